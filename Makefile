# Hookgate build, local mode and tests. `sam build` calls the build-<LogicalId> targets (BuildMethod:
# makefile) with ARTIFACTS_DIR set; `make dev` and `make test` build the same bootstraps for the host.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The Go toolchain every target builds, tests and checks with (go.mod says `go 1.27.3`). The go
# command downloads it through the module proxy when the machine's Go is older; exported here
# because a machine whose go.env says GOTOOLCHAIN=local would otherwise refuse to build.
export GOTOOLCHAIN := go1.27.3
# Every go command builds without the checkout's path in its output (the bootstraps are built so
# for AWS anyway): the build cache's entries then do not depend on where the repository is, so a
# fresh clone or a worktree reuses what an earlier checkout on the machine compiled (the race
# run's compiling took 77 CPU-seconds on a fresh clone, 37 with this). On a machine whose build
# cache is empty it changes nothing.
export GOFLAGS += -trimpath

GO         ?= go
GOARCH     ?= arm64
HOST_ARCH  := $(shell GOTOOLCHAIN=$(GOTOOLCHAIN) $(GO) env GOARCH)
GOBUILD    := CGO_ENABLED=0 GOOS=linux $(GO) build -trimpath -ldflags='-s -w' -tags lambda.norpc
LOCAL_BIN  := .build/$(HOST_ARCH)

# Every function of template.yaml, with its folder under functions/. The template test fails when a
# function of the template has no build target here or no main package there.
FUNCTIONS := InboundGenericFunction InboundWebhookFunction InboundTelegramFunction InboundBindingFunction IntegrationsTriggerFunction WorkerFunction AdapterFunction ManagementFunction FanoutFunction DeliveryFunction DeliverySweepFunction NotFoundFunction

build-InboundGenericFunction: ; $(call bootstrap,inbound-generic)
build-InboundWebhookFunction:  ; $(call bootstrap,inbound-webhook)
build-InboundTelegramFunction: ; $(call bootstrap,inbound-telegram)
build-InboundBindingFunction:  ; $(call bootstrap,inbound-binding)
build-IntegrationsTriggerFunction: ; $(call bootstrap,integrations-trigger)
build-WorkerFunction:         ; $(call bootstrap,worker)
build-AdapterFunction:        ; $(call bootstrap,adapter)
build-ManagementFunction:     ; $(call bootstrap,management)
build-FanoutFunction:         ; $(call bootstrap,fanout)
build-DeliveryFunction:       ; $(call bootstrap,delivery)
build-DeliverySweepFunction:  ; $(call bootstrap,delivery-sweep)
build-NotFoundFunction:       ; $(call bootstrap,notfound)

# Live views: the event stream and the web widget.
FUNCTIONS += EventStreamFunction WebWidgetFunction WebStreamFunction WidgetAssetsFunction
build-EventStreamFunction:    ; $(call bootstrap,event-stream)
build-WebWidgetFunction:      ; $(call bootstrap,web-widget)
build-WebStreamFunction:      ; $(call bootstrap,web-stream)
build-WidgetAssetsFunction:   ; $(call bootstrap,widget-assets)

define bootstrap
	@test -n "$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is not set (sam build sets it)"; exit 2; }
	GOARCH=$(GOARCH) $(GOBUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/$(1)
endef

.PHONY: help deps bootstraps dev cli test test-race test-long vulncheck bench cost chaos invoke openapi clean $(addprefix build-,$(FUNCTIONS))

help:
	@echo "make dev        run the whole gateway locally on 127.0.0.1:3000 (installs and starts the emulators)"
	@echo "make test       run every test (unit, template, emulator integration) and make vulncheck"
	@echo "make vulncheck  govulncheck against the Go vulnerability database (VULNDB=latest for the newest)"
	@echo "make bench      benchmarks and bootstrap sizes (5 to 10 minutes; with the log shards' contention, burst and fan-out drain benchmarks)"
	@echo "make cost       what a webhook costs on AWS, per scenario (PIN=1 pins the units the test checks)"
	@echo "make chaos      fault-injection load suite (MESSAGES=10000 CONNECTIONS=32 FAULTS=all or a list, see README)"
	@echo "make invoke FN=<LogicalId> EVENT=events/<file>.json   run one function on one event"
	@echo "make cli        build the hookgate command line into .build/hookgate (or: go install ./cmd/hookgate)"
	@echo "make openapi    write openapi.yaml as the JSON GET /openapi.json serves (after editing openapi.yaml)"
	@echo "make clean      remove build output and local emulator data"

# Installs what local mode and the tests need: Go modules, the npm emulators (pinned in
# package-lock.json), the KMS emulator (built from go.mod's tool) and a Java runtime for DynamoDB Local; Debian's Chromium for the widget's
# browser test (driven by playwright-core, also pinned in package-lock.json); govulncheck (below).
GOVULNCHECK_VERSION := v1.10.0
VULNDB ?= v0.0.0-20261105234957-e22db6528018
GOVULNCHECK := .build/tools/$(GOTOOLCHAIN)/govulncheck-$(GOVULNCHECK_VERSION)/govulncheck
deps: node_modules/.package-lock.json $(LOCAL_KMS) $(GOVULNCHECK)
	@$(GO) mod download
	@command -v java >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing a Java runtime for DynamoDB Local"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jre-headless >/dev/null; \
	  else echo "DynamoDB Local needs Java 17+: install it (apt-get install default-jre-headless)"; exit 1; fi; }
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Chromium for the widget's browser test"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "the widget's browser test needs Chromium: install it (apt-get install chromium)"; exit 1; fi; }

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

# The KMS emulator of local mode (github.com/nsmithuk/local-kms, a tool of go.mod), for the host.
LOCAL_KMS := .build/local-kms
$(LOCAL_KMS): go.mod go.sum
	@$(GO) build -o $@ github.com/nsmithuk/local-kms

# Host-arch bootstraps for local mode and the integration tests (and the KMS emulator they run on).
bootstraps: $(LOCAL_KMS)
	@for fn in $(FUNCTIONS); do $(MAKE) --no-print-directory -s build-$$fn GOARCH=$(HOST_ARCH) ARTIFACTS_DIR=$(LOCAL_BIN)/$$fn || exit 1; done

dev: deps bootstraps
	@$(GO) build -o .build/hookgate-local ./local/cmd/hookgate-local
	@.build/hookgate-local dev -bin $(LOCAL_BIN)

# The hookgate command line (cmd/hookgate, package cli), for this machine. `go install ./cmd/hookgate`
# puts it in $(GOBIN) instead.
cli:
	$(GO) build -trimpath -o .build/hookgate ./cmd/hookgate

# GET /openapi.json serves openapi.yaml as JSON, compiled into WidgetAssetsFunction; local/openapi's
# test fails when the JSON is not the YAML's.
openapi:
	$(GO) run ./local/openapi/gen

# Long tests run once without the race detector, after the race-detected run of everything else:
# the volume tests (thousands of messages or events), which under -race only repeat the same code
# paths slower; the tests that wait on real time (the whole default delivery schedule under Lambda's
# recursion rule, with and without the re-queue bound; a 10/s rate limit; retries spread over
# seconds); the cost meter's scenarios (counts, the same with or without -race); and the CI-sized
# chaos run (local/chaos: every fault once on its own emulators). Not beside the race run: on two
# cores the extra load made time-bound tests of the race run fail. Each test on a stack of its own,
# in three lines of work side by side (about 145 s; the schedule tests' line is the floor):
#   - the two schedule tests (LONG_E2E_SLEEPY: 112 s of real waits, about 55 CPU-seconds);
#   - the paced tests (LONG_E2E_PACED: a 10/s rate limit over 1,000 events, about 103 s; retries
#     spaced in time, about 57 s; 50 CPU-seconds together), then the stream's volume test
#     (LONG_E2E_STREAM: 3,000 events, about 20 s), then the worker's attacks (LONG_WORKER, about
#     10 s: at the start of the schedule tests' line they overlapped the chaos run, whose stall
#     detector then fired);
#   - the chaos run (60-90 s here) beside the cost meter (about 75 s: the five scenarios' stack,
#     then scenario a4's, with four shards; its scenarios on two stacks side by side took 47 s, but
#     the second stack's load once raised (d)'s polled reads from 8 to 10 units, over the pin, and
#     a4's stack beside the first made two spaced retries share a 100 ms window), then, once both
#     are done, the burst (LONG_E2E_BURST: 1,000
#     messages, 50-60 s, most of two cores). The burst, the stream's volume test and the attacks
#     are not beside the spaced retries, the cost
#     meter or the chaos run: they load the emulators and the machine those depend on
#     (earlier, beside them a rate-limited delivery's bookkeeping failed five times and reached its
#     DLQ, two spaced retries went in the same 100 ms, the cost meter's polled reads rose: scenario
#     (d) 10 -> 12 read units, over its 5% bound, and the chaos run found a stall it could not
#     explain). The burst overlaps the 10/s test's last half minute, which measures its rate over
#     the whole 100 s. (The two volume tests side by side after the chaos run, with the attacks
#     after them, made that line 20 s longer than the schedule tests'.)
# The schedule tests check where chains end, not when: a slower hop only lengthens them, within
# their 6-minute wait.
LONG_E2E_BURST  := TestBurstEveryEventDeliveredOnce
LONG_E2E_STREAM := TestEventStreamResumesWithoutLossOrRepeats
LONG_E2E_SLEEPY := TestDefaultScheduleCompletesUnderTheRecursionRule|TestUnboundedRequeuesStayUnderTheRecursionRule
LONG_E2E_PACED  := TestThrottleBurstArrivesAtTheRateLimit|TestRetriesOfAnOutageDoNotStampede
LONG_WAITING    := TestCostScenariosPinned|TestChaosEveryFaultOnce
# The worker's attacks on its held opening events by the hundred (every call failing once, random
# failures, simultaneous deliveries): 30 CPU-seconds under -race, a fifth of that without; the
# race run keeps the attack on the hold's timer (TestAttack14TurnsEndingAsTheHoldEnds).
LONG_WORKER     := TestAttack14EveryCallFailsOnceInTheApprovalFlow|TestAttack14ChaosEveryEventOnceAndInOrder|TestAttack14SimultaneousDeliveriesOfANewRun
# The attacks on the event log's shards (forged cursors and keys, crafted shards, racing creators,
# floods of readers: inputs, not interleavings; the race run keeps the shards' own tests): about 33
# s of the race run on two cores, 15 s without -race on their own, after the burst, whose line ends
# some 20 s before the schedule tests'. (Under -race there, they doubled the stream volume test's
# time beside them.)
LONG_SHARDS     := TestAttackCraftedLogShardOnMeta|TestAttackCraftedMark|TestAttackCraftedShardOnMarker|TestAttackCreatorsWithOneFourSixteenShards|TestAttackDecimalIDAfterTheMarkRose|TestAttackFloodReadersResumingMidWay|TestAttackForgedShardKeysAreNotDelivered|TestAttackForgedTokensAgainstFourShards|TestAttackLastEventIDVersusSince|TestAttackMetaOfAnotherChannel|TestAttackReplayRebuildsEveryShard|TestAttackRepostNamingAnotherThreadKeepsEachIndexInItsShard|TestAttackRepostOnAnotherWidgetThreadWithFourShards|TestAttackSameGroupsAppendedAtOnceWithOtherShardCounts|TestAttackSlotRunOnAThreadOfAnotherShard|TestAttackWidgetResumesExactlyOnceWithFourShards|TestAttackWidgetStreamGivenForeignCursors
LONG_SHARD_PKGS := ./shared/store ./shared/eventstream ./shared/widget ./shared/worker ./shared/fanout ./shared/fanoutdlq
LONG_TESTS := ^($(LONG_E2E_BURST)|$(LONG_E2E_STREAM)|$(LONG_E2E_SLEEPY)|$(LONG_E2E_PACED)|$(LONG_WAITING)|$(LONG_WORKER)|$(LONG_SHARDS))$$
LONG_PKGS  := ./local/e2e ./local/cost ./local/chaos $(LONG_SHARD_PKGS)
LONG_COUNT := 28
# Jobs run beside each other each in a process group of its own (set -m), all killed if make is
# stopped; set +m once they are started keeps bash from reporting them done.
BESIDE := set -m; jobs=""; trap 'kill -- $$jobs 2>/dev/null; exit 1' INT TERM
LONG_RUN   := HOOKGATE_BIN_DIR=$(CURDIR)/$(LOCAL_BIN) $(GO) test -count=1 -timeout 20m -parallel 8
# The long tests' names must each match a test (and the race run skips exactly them). Checked
# before the race run: beside it, its compiling slowed the race run more than it saved.
LONG_LIST  = n=$$($(GO) test -list '$(LONG_TESTS)' $(LONG_PKGS) | grep -c '^Test'); \
  test "$$n" -eq $(LONG_COUNT) || { echo "LONG_TESTS matches $$n tests of $(LONG_PKGS), want $(LONG_COUNT)"; exit 1; }

test: deps bootstraps
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './node_modules/*')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@$(LONG_LIST)
	@s=$$(date +%s); $(MAKE) --no-print-directory test-race; rc=$$?; echo "make test: the race run took $$(( $$(date +%s) - s )) s"; exit $$rc
	@s=$$(date +%s); $(MAKE) --no-print-directory test-long; rc=$$?; echo "make test: the long tests took $$(( $$(date +%s) - s )) s"; exit $$rc

test-long: bootstraps
	@echo "long tests: the schedule tests; the paced tests, then the stream's volume test, then the worker's attacks; the cost meter and the chaos run, then the burst, then the attacks on the log's shards; side by side"
	@mkdir -p .build; $(BESIDE); rc=0; \
	  $(LONG_RUN) -run '^($(LONG_E2E_SLEEPY))$$' ./local/e2e > .build/long-sleepy.log 2>&1 & sleepy=$$!; jobs="$$jobs -$$!"; \
	  { r=0; $(LONG_RUN) -run '^($(LONG_E2E_PACED))$$' ./local/e2e || r=1; \
	    $(LONG_RUN) -run '^($(LONG_E2E_STREAM))$$' ./local/e2e || r=1; \
	    $(LONG_RUN) -run '^($(LONG_WORKER))$$' ./shared/worker || r=1; exit $$r; } > .build/long-paced.log 2>&1 & paced=$$!; jobs="$$jobs -$$!"; \
	  $(LONG_RUN) -run '^TestChaosEveryFaultOnce$$' ./local/chaos > .build/long-chaos.log 2>&1 & chaos=$$!; jobs="$$jobs -$$!"; set +m; \
	  $(LONG_RUN) -run '^TestCostScenariosPinned$$' ./local/cost || rc=1; \
	  wait $$chaos || rc=1; cat .build/long-chaos.log; \
	  $(LONG_RUN) -run '^($(LONG_E2E_BURST))$$' ./local/e2e || rc=1; \
	  $(LONG_RUN) -run '^($(LONG_SHARDS))$$' $(LONG_SHARD_PKGS) || rc=1; \
	  wait $$paced || rc=1; cat .build/long-paced.log; \
	  wait $$sleepy || rc=1; cat .build/long-sleepy.log; exit $$rc

# Everything make test runs before the long tests: every test under -race, four packages at a time
# (most of a package's time is waiting on its emulators and functions), the end-to-end package, the
# longest, first. Each test binary starts its own emulators: DynamoDB Local serves all of a
# process's requests on one thread, and one shared by every package made writes of the store's
# tests miss their 10 s window. Beside the race run, the checks that run nothing under test (vet,
# vulncheck) and the allocation checks, which mean nothing under -race (sync.Pool drops items): the
# race run's first minute on a fresh clone is mostly compiling on one core. Their output follows
# the race run's.
test-race: bootstraps $(GOVULNCHECK)
	@mkdir -p .build; $(BESIDE); rc=0; \
	  { $(GO) vet ./... && $(VULNCHECK) && \
	    $(GO) test -count=1 -run 'Allocates' ./shared/verify ./shared/outbound ./shared/manage; } > .build/checks.log 2>&1 & checks=$$!; jobs="$$jobs -$$!"; \
	  echo "race run (vet, vulncheck and the allocation checks beside it: .build/checks.log)"; \
	  HOOKGATE_BIN_DIR=$(CURDIR)/$(LOCAL_BIN) $(GO) test -race -p 4 -count=1 -timeout 15m -parallel 96 -skip '$(LONG_TESTS)' ./local/e2e ./... & race=$$!; jobs="$$jobs -$$!"; set +m; \
	  wait $$race || rc=1; wait $$checks || rc=1; cat .build/checks.log; exit $$rc

# Supply chain: govulncheck reports the vulnerabilities that the code can reach, in the standard
# library of the toolchain above and in the modules of go.mod. It is built and run by that toolchain
# (its bin/ first in PATH: a govulncheck built by an older Go cannot load a newer standard library)
# and reads a database built offline from the golang.org/x/vulndb module (its data/osv entries,
# indexed into .build/vulndb once per version), so it needs the module proxy only, not vuln.go.dev.
# Its version and the database's are set above deps, which installs it.
$(GOVULNCHECK):
	GOBIN=$(CURDIR)/$(@D) $(GO) install golang.org/x/vuln/cmd/govulncheck@$(GOVULNCHECK_VERSION)

VULNCHECK = $(GO) build -o .build/hookgate-local ./local/cmd/hookgate-local && \
  .build/hookgate-local vulndb -version $(VULNDB) -out .build/vulndb && \
  PATH="$$($(GO) env GOROOT)/bin:$$PATH" $(GOVULNCHECK) -db file://$(CURDIR)/.build/vulndb ./...
vulncheck: $(GOVULNCHECK)
	$(VULNCHECK)

# Every benchmark, one package at a time (-p 1: a package's ratios are measured in one run, and
# another package's benchmarks would share the two cores with it meanwhile), then each against its
# baseline. Among them shared/store's BenchmarkAppendContention and …Throttled (1 and 4 log shards,
# 1 to 8 appending processes; under a minute), local/e2e's BenchmarkBurstDrain (2,000 messages
# drained from a log of 1 shard, then 4; 3 to 4 minutes; end to end, CPU-bound on two cores) and
# BenchmarkFanoutDrain (the fan-out alone draining 8,000 events of a log of 1 shard, then 4, with
# 8 ms per DynamoDB and 15 ms per SQS call assumed at a proxy; 30 to 70 s). The whole took 5 to 10
# minutes on two cores shared with other work (load average 6 to 11). One of them alone, e.g.:
#   HOOKGATE_BIN_DIR=$PWD/.build/amd64 go test -run '^$' -bench FanoutDrain -timeout 30m ./local/e2e | .build/hookgate-local ratios
bench: deps bootstraps
	@$(GO) build -o .build/hookgate-local ./local/cmd/hookgate-local
	set -o pipefail; HOOKGATE_BIN_DIR=$(CURDIR)/$(LOCAL_BIN) $(GO) test -p 1 -timeout 30m -run '^$$' -bench . -benchmem -count=1 ./... | .build/hookgate-local ratios
	@.build/hookgate-local sizes

# The cost meter: fixed scenarios through the local stack, every DynamoDB and SQS request counted
# at the wire and priced (local/cost). The same run is a test of make test: it fails when a
# scenario's units rise over 5% above local/cost/testdata/units.json; PIN=1 rewrites that file.
cost: deps bootstraps
	@set -o pipefail; HOOKGATE_BIN_DIR=$(CURDIR)/$(LOCAL_BIN) $(GO) test -count=1 -timeout 20m -v -run '^TestCostScenariosPinned$$' ./local/cost \
	  -args -report $(if $(PIN),-update) | grep -v -e '^=== RUN' -e '^--- PASS' -e '^PASS' -e '^ok '

# The fault-injection load suite (local/chaos): its own emulators and stack, MESSAGES generic
# inbound posts from CONNECTIONS connections while FAULTS fire (all, none, or a comma-separated list
# of kill-worker, kill-fanout, kill-delivery, kill-dynamodb, pause-sqs, receiver-faults,
# agent-faults, odd-bytes), then the checks; one table, exit 1 on any loss, doubling or stuck item.
MESSAGES    ?= 10000
CONNECTIONS ?= 32
FAULTS      ?= all
chaos: deps bootstraps
	@$(GO) build -o .build/hookgate-chaos ./local/cmd/hookgate-chaos
	@.build/hookgate-chaos -bin $(LOCAL_BIN) -messages $(MESSAGES) -connections $(CONNECTIONS) -faults $(FAULTS)

invoke: deps bootstraps
	@test -n "$(FN)" -a -n "$(EVENT)" || { echo "usage: make invoke FN=<LogicalId> EVENT=events/<file>.json"; exit 2; }
	@$(GO) build -o .build/hookgate-local ./local/cmd/hookgate-local
	@.build/hookgate-local invoke -bin $(LOCAL_BIN) -fn $(FN) -event $(EVENT)

clean:
	rm -rf .build .hookgate
