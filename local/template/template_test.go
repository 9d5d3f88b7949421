package template

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/parser"
	"go/scanner"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// optionalEnv lists the environment variables the code may read without the template setting
// them: local-only overrides that are unset on AWS (the emulator endpoints of shared/awscfg).
var optionalEnv = map[string]bool{
	"HOOKGATE_DYNAMODB_ENDPOINT": true,
	"HOOKGATE_SQS_ENDPOINT":      true,
	"HOOKGATE_KMS_ENDPOINT":      true,
}

// TestRepoTemplate is the structural test of the project: template.yaml, the Makefile and the
// code under functions/ must agree.
func TestRepoTemplate(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := Load(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	mkData, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	mk := parseMakefile(string(mkData))
	module, err := modulePath(root)
	if err != nil {
		t.Fatal(err)
	}
	hasMain := func(dir string) error { return mainPackage(root, dir) }

	report := func(t *testing.T, problems []string) {
		t.Helper()
		for _, p := range problems {
			t.Errorf("%s", p)
		}
	}
	t.Run("build targets", func(t *testing.T) { report(t, checkBuildTargets(tpl.Functions(), mk, hasMain)) })
	t.Run("function settings", func(t *testing.T) { report(t, checkFunctionSettings(tpl.Functions())) })
	t.Run("routes", func(t *testing.T) { report(t, checkRoutes(tpl)) })
	t.Run("sqs sources", func(t *testing.T) { report(t, checkSQSSources(tpl)) })
	t.Run("stream sources", func(t *testing.T) { report(t, checkStreamSources(tpl)) })
	t.Run("queues", func(t *testing.T) { report(t, checkQueues(tpl)) })
	t.Run("log groups", func(t *testing.T) { report(t, checkLogGroups(tpl)) })
	t.Run("tables", func(t *testing.T) { report(t, checkTables(tpl)) })
	t.Run("references", func(t *testing.T) { report(t, checkReferences(tpl)) })
	t.Run("secret parameters", func(t *testing.T) { report(t, checkSecretParameters(tpl)) })
	t.Run("policies", func(t *testing.T) { report(t, checkPolicies(tpl)) })
	t.Run("environment", func(t *testing.T) {
		for _, fn := range tpl.Functions() {
			dir, ok := mk.targets[fn.LogicalID]
			if !ok || dir == "" || hasMain(dir) != nil {
				continue // reported by "build targets"
			}
			reads, err := envReads(root, module, dir)
			if err != nil {
				t.Errorf("%s: %v", fn.LogicalID, err)
				continue
			}
			t.Logf("%s (functions/%s) names %s", fn.LogicalID, dir, strings.Join(sortedKeys(reads), " "))
			report(t, checkEnvReads(fn, reads))
		}
	})
}

// repoRoot walks up from the working directory to the directory holding go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// modulePath reads the module path from root/go.mod.
func modulePath(root string) (string, error) {
	data, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`), nil
		}
	}
	return "", errors.New("go.mod has no module line")
}

// makefile is what the template test needs from the Makefile.
type makefile struct {
	targets   map[string]string // build-<LogicalId> targets → the folder of $(call bootstrap,<dir>), "" if none
	functions []string          // the FUNCTIONS variable; nil when there is none
}

func parseMakefile(src string) makefile {
	mk := makefile{targets: map[string]string{}}
	targetRe := regexp.MustCompile(`^build-([A-Za-z0-9]+)\s*:([^=].*)?$`)
	callRe := regexp.MustCompile(`\$\(call\s+bootstrap\s*,\s*([^)\s]*)\s*\)`)
	funcsRe := regexp.MustCompile(`^FUNCTIONS\s*[:+?]?=(.*)$`)
	// Join continuation lines first.
	src = strings.ReplaceAll(src, "\\\n", " ")
	current := ""
	sc := bufio.NewScanner(strings.NewReader(src))
	for sc.Scan() {
		line := sc.Text()
		recipe := ""
		switch {
		case strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#"):
			continue
		case strings.HasPrefix(line, "\t"):
			if current == "" {
				continue
			}
			recipe = line
		default:
			current = ""
			if m := targetRe.FindStringSubmatch(line); m != nil {
				current = m[1]
				if _, ok := mk.targets[current]; !ok {
					mk.targets[current] = ""
				}
				if _, after, ok := strings.Cut(m[2], ";"); ok {
					recipe = after
				}
			} else if m := funcsRe.FindStringSubmatch(line); m != nil {
				mk.functions = append(mk.functions, strings.Fields(m[1])...)
			}
		}
		if m := callRe.FindStringSubmatch(recipe); m != nil && current != "" && mk.targets[current] == "" {
			mk.targets[current] = m[1]
		}
	}
	return mk
}

// mainPackage fails unless functions/<dir>/main.go exists and is in package main.
func mainPackage(root, dir string) error {
	path := filepath.Join(root, "functions", dir, "main.go")
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.PackageClauseOnly)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("functions/%s/main.go does not exist", dir)
		}
		return fmt.Errorf("functions/%s/main.go: %v", dir, err)
	}
	if f.Name.Name != "main" {
		return fmt.Errorf("functions/%s/main.go is package %s, not package main", dir, f.Name.Name)
	}
	return nil
}

// checkBuildTargets: every function has a build-<LogicalId> target building functions/<dir>,
// which holds a main package, and is listed in FUNCTIONS; no target or entry is left over.
func checkBuildTargets(fns []Function, mk makefile, hasMain func(dir string) error) []string {
	var problems []string
	declared := map[string]bool{}
	for _, fn := range fns {
		id := fn.LogicalID
		declared[id] = true
		if !slices.Contains(mk.functions, id) {
			problems = append(problems, fmt.Sprintf("%s: not listed in FUNCTIONS of the Makefile (make bootstraps would not build it)", id))
		}
		dir, ok := mk.targets[id]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("%s: the Makefile has no build-%s: target (BuildMethod makefile needs one)", id, id))
		case dir == "":
			problems = append(problems, fmt.Sprintf("%s: target build-%s does not call $(call bootstrap,<dir>)", id, id))
		case !filepath.IsLocal(dir) || filepath.Clean(dir) != dir:
			problems = append(problems, fmt.Sprintf("%s: target build-%s builds %q, not a folder under functions/", id, id, dir))
		default:
			if err := hasMain(dir); err != nil {
				problems = append(problems, fmt.Sprintf("%s: target build-%s builds functions/%s, but %v", id, id, dir, err))
			}
		}
	}
	for _, id := range sortedKeys(mk.targets) {
		if !declared[id] {
			problems = append(problems, fmt.Sprintf("Makefile target build-%s has no function %s in the template", id, id))
		}
	}
	for _, id := range mk.functions {
		if !declared[id] {
			problems = append(problems, fmt.Sprintf("FUNCTIONS in the Makefile lists %s, which is not a function of the template", id))
		}
	}
	return problems
}

// checkFunctionSettings: every function is a provided.al2023 arm64 bootstrap built by the Makefile.
func checkFunctionSettings(fns []Function) []string {
	var problems []string
	for _, fn := range fns {
		if fn.Runtime != "provided.al2023" {
			problems = append(problems, fmt.Sprintf("%s: Runtime is %q, want provided.al2023", fn.LogicalID, fn.Runtime))
		}
		if !slices.Equal(fn.Architectures, []string{"arm64"}) {
			problems = append(problems, fmt.Sprintf("%s: Architectures is %v, want [arm64]", fn.LogicalID, fn.Architectures))
		}
		if fn.Handler != "bootstrap" {
			problems = append(problems, fmt.Sprintf("%s: Handler is %q, want bootstrap", fn.LogicalID, fn.Handler))
		}
		if fn.BuildMethod != "makefile" {
			problems = append(problems, fmt.Sprintf("%s: Metadata.BuildMethod is %q, want makefile", fn.LogicalID, fn.BuildMethod))
		}
	}
	return problems
}

// checkRoutes: HttpApi events name an AWS::Serverless::HttpApi of the template, use a known
// method and a well-formed path, and no two events declare the same route of the same API.
func checkRoutes(tpl *Template) []string {
	var problems []string
	methods := []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY"}
	seen := map[string]string{} // api + method + normalized path → Function.Event
	for _, fn := range tpl.Functions() {
		for _, r := range fn.Routes {
			at := fn.LogicalID + ".Events." + r.Event
			api := ""
			switch {
			case r.API.Kind == KindLiteral && r.API.Literal == "":
				problems = append(problems, fmt.Sprintf("%s: HttpApi event has no ApiId (SAM would create a second, implicit API)", at))
			case r.API.Kind != KindRef:
				problems = append(problems, fmt.Sprintf("%s: ApiId is %s, want !Ref of an AWS::Serverless::HttpApi resource", at, r.API))
			case tpl.Resources[r.API.Ref].Type != TypeHTTPAPI:
				problems = append(problems, fmt.Sprintf("%s: ApiId !Ref %s is not an AWS::Serverless::HttpApi resource of the template", at, r.API.Ref))
			default:
				api = r.API.Ref
			}
			if !slices.Contains(methods, r.Method) {
				problems = append(problems, fmt.Sprintf("%s: Method %q is not one of %v", at, r.Method, methods))
			}
			key := r.Path
			if !r.Default {
				norm, err := normalizeRoutePath(r.Path)
				if err != nil {
					problems = append(problems, fmt.Sprintf("%s: Path %q is malformed: %v", at, r.Path, err))
					continue
				}
				key = norm
			}
			key = api + " " + r.Method + " " + key
			if prev, dup := seen[key]; dup {
				problems = append(problems, fmt.Sprintf("%s: route %s %s is also declared by %s", at, r.Method, r.Path, prev))
				continue
			}
			seen[key] = at
		}
	}
	return problems
}

// normalizeRoutePath validates an HTTP API route path and returns it with parameter names
// erased, so /a/{x} and /a/{y} compare equal.
func normalizeRoutePath(path string) (string, error) {
	if !strings.HasPrefix(path, "/") {
		return "", errors.New("must start with /")
	}
	if path == "/" {
		return path, nil
	}
	nameRe := regexp.MustCompile(`^[A-Za-z0-9_]+$`)
	segs := strings.Split(path[1:], "/")
	params := map[string]bool{}
	out := make([]string, len(segs))
	for i, s := range segs {
		switch {
		case s == "":
			return "", errors.New("has an empty segment (// or a trailing /)")
		case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}"):
			name := s[1 : len(s)-1]
			greedy := strings.HasSuffix(name, "+")
			name = strings.TrimSuffix(name, "+")
			if !nameRe.MatchString(name) {
				return "", fmt.Errorf("parameter %s must be {name} with letters, digits or _", s)
			}
			if greedy && i != len(segs)-1 {
				return "", fmt.Errorf("greedy parameter %s must be the last segment", s)
			}
			if params[name] {
				return "", fmt.Errorf("parameter {%s} appears twice", name)
			}
			params[name] = true
			out[i] = "{}"
			if greedy {
				out[i] = "{+}"
			}
		case strings.ContainsAny(s, "{}?# \t\r\n%"):
			return "", fmt.Errorf("segment %q has a character that is not allowed ({, }, ?, #, %%, space)", s)
		default:
			out[i] = s
		}
	}
	return "/" + strings.Join(out, "/"), nil
}

// checkSQSSources: SQS events read a queue of the template (!GetAtt Queue.Arn), report batch item
// failures, bound their concurrency (ScalingConfig.MaximumConcurrency), and the queue's visibility
// timeout is at least the function's timeout.
func checkSQSSources(tpl *Template) []string {
	var problems []string
	queues := map[string]Queue{}
	for _, q := range tpl.Queues() {
		queues[q.LogicalID] = q
	}
	for _, fn := range tpl.Functions() {
		for _, s := range fn.SQSSources {
			at := fn.LogicalID + ".Events." + s.Event
			q, ok := queues[s.Queue]
			switch {
			case s.Queue == "":
				problems = append(problems, fmt.Sprintf("%s: Queue is %s, want !GetAtt <Queue>.Arn of a queue of the template", at, s.Source))
			case !ok:
				problems = append(problems, fmt.Sprintf("%s: Queue !GetAtt %s.Arn is not an AWS::SQS::Queue of the template", at, s.Queue))
			case q.VisibilityTimeout < fn.Timeout:
				problems = append(problems, fmt.Sprintf("%s: queue %s has VisibilityTimeout %d, less than the function Timeout %d", at, s.Queue, q.VisibilityTimeout, fn.Timeout))
			}
			if !s.ReportBatchItemFailures {
				problems = append(problems, fmt.Sprintf("%s: FunctionResponseTypes lacks ReportBatchItemFailures", at))
			}
			if absent(s.MaximumConcurrency) {
				problems = append(problems, fmt.Sprintf("%s: ScalingConfig.MaximumConcurrency is not set (one queue's backlog could take the account's concurrency)", at))
			}
		}
	}
	return problems
}

// checkStreamSources: DynamoDB events read the stream of a table of the template (!GetAtt
// Table.StreamArn) that has a StreamSpecification, report batch item failures, use settings Lambda
// accepts, have filter patterns that are JSON objects, and send discarded records to a standard
// queue of the template.
func checkStreamSources(tpl *Template) []string {
	var problems []string
	tables := map[string]Table{}
	for _, tb := range tpl.Tables() {
		tables[tb.LogicalID] = tb
	}
	queues := map[string]Queue{}
	for _, q := range tpl.Queues() {
		queues[q.LogicalID] = q
	}
	for _, fn := range tpl.Functions() {
		for _, s := range fn.StreamSources {
			at := fn.LogicalID + ".Events." + s.Event
			tb, ok := tables[s.Table]
			switch {
			case s.Table == "":
				problems = append(problems, fmt.Sprintf("%s: Stream is %s, want !GetAtt <Table>.StreamArn of a table of the template", at, s.Stream))
			case !ok:
				problems = append(problems, fmt.Sprintf("%s: Stream !GetAtt %s.StreamArn is not an AWS::DynamoDB::Table of the template", at, s.Table))
			case tb.StreamViewType == "":
				problems = append(problems, fmt.Sprintf("%s: table %s has no StreamSpecification, so no stream to read", at, s.Table))
			}
			if !s.ReportBatchItemFailures {
				problems = append(problems, fmt.Sprintf("%s: FunctionResponseTypes lacks ReportBatchItemFailures", at))
			}
			if s.StartingPosition != "TRIM_HORIZON" && s.StartingPosition != "LATEST" {
				problems = append(problems, fmt.Sprintf("%s: StartingPosition is %q, want TRIM_HORIZON or LATEST", at, s.StartingPosition))
			}
			for _, r := range []struct {
				name      string
				v, lo, hi int
			}{
				{"BatchSize", s.BatchSize, 1, 10000},
				{"MaximumBatchingWindowInSeconds", s.MaximumBatchingWindowInSeconds, 0, 300},
				{"MaximumRetryAttempts", s.MaximumRetryAttempts, -1, 10000},
			} {
				if r.v < r.lo || r.v > r.hi {
					problems = append(problems, fmt.Sprintf("%s: %s is %d, want %d to %d", at, r.name, r.v, r.lo, r.hi))
				}
			}
			for i, p := range s.FilterPatterns {
				var obj map[string]any
				if err := json.Unmarshal([]byte(p), &obj); err != nil || obj == nil {
					problems = append(problems, fmt.Sprintf("%s: FilterCriteria.Filters[%d].Pattern is not a JSON object: %q", at, i, p))
				}
			}
			if s.OnFailure.Kind == KindLiteral && s.OnFailure.Literal == "" {
				continue
			}
			dest := ""
			if s.OnFailure.Kind == KindGetAtt && s.OnFailure.GetAtt[1] == "Arn" {
				dest = s.OnFailure.GetAtt[0]
			}
			switch q, ok := queues[dest]; {
			case !ok:
				problems = append(problems, fmt.Sprintf("%s: DestinationConfig.OnFailure.Destination is %s, want !GetAtt <Queue>.Arn of a standard queue of the template", at, s.OnFailure))
			case q.Fifo:
				problems = append(problems, fmt.Sprintf("%s: DestinationConfig.OnFailure.Destination %s is a FIFO queue; Lambda sends discarded stream records only to standard queues", at, dest))
			}
		}
	}
	return problems
}

// checkQueues: every queue is encrypted at rest (SqsManagedSseEnabled or KmsMasterKeyId), and
// redrive targets are queues of the template of the same kind (FIFO or standard).
func checkQueues(tpl *Template) []string {
	var problems []string
	queues := map[string]Queue{}
	for _, q := range tpl.Queues() {
		queues[q.LogicalID] = q
	}
	for _, q := range tpl.Queues() {
		if !q.Encrypted {
			problems = append(problems, fmt.Sprintf("%s: not encrypted at rest - set SqsManagedSseEnabled: true (or KmsMasterKeyId)", q.LogicalID))
		}
		if q.Redrive == nil {
			continue
		}
		dlq, ok := queues[q.Redrive.Target]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("%s: RedrivePolicy.deadLetterTargetArn is %s, want !GetAtt <Queue>.Arn of a queue of the template", q.LogicalID, q.Redrive.TargetARN))
		case dlq.Fifo != q.Fifo:
			problems = append(problems, fmt.Sprintf("%s: dead-letter queue %s must be FIFO exactly when the queue is (FifoQueue %v vs %v)", q.LogicalID, dlq.LogicalID, q.Fifo, dlq.Fifo))
		}
	}
	return problems
}

// checkLogGroups: every function logs to a log group of the template (LoggingConfig.LogGroup:
// !Ref <LogGroup>) that sets RetentionInDays, so no log is kept forever or outlives the stack.
func checkLogGroups(tpl *Template) []string {
	var problems []string
	groups := map[string]LogGroup{}
	for _, lg := range tpl.LogGroups() {
		groups[lg.LogicalID] = lg
	}
	for _, fn := range tpl.Functions() {
		lg, ok := groups[fn.LogGroup.Ref]
		switch {
		case fn.LogGroup.Kind != KindRef || !ok:
			problems = append(problems, fmt.Sprintf("%s: LoggingConfig.LogGroup is %s, want !Ref <LogGroup> of an AWS::Logs::LogGroup of the template", fn.LogicalID, fn.LogGroup))
		case absent(lg.RetentionInDays):
			problems = append(problems, fmt.Sprintf("%s: log group %s has no RetentionInDays (kept forever)", fn.LogicalID, lg.LogicalID))
		}
	}
	return problems
}

// absent reports whether a property's Value is the zero Value (the property is missing or empty).
func absent(v Value) bool { return v.Kind == KindLiteral && v.Literal == "" }

// checkTables: AttributeDefinitions are exactly the attributes used by the table and index keys.
func checkTables(tpl *Template) []string {
	var problems []string
	for _, tb := range tpl.Tables() {
		used := map[string]bool{}
		keys := []KeySchema{tb.Key}
		for _, ix := range append(slices.Clone(tb.GSIs), tb.LSIs...) {
			keys = append(keys, ix.Key)
		}
		for _, k := range keys {
			for _, a := range []string{k.Hash, k.Range} {
				if a != "" {
					used[a] = true
				}
			}
		}
		defined := map[string]bool{}
		for _, d := range tb.AttributeDefinitions {
			defined[d.Name] = true
			if !used[d.Name] {
				problems = append(problems, fmt.Sprintf("%s: attribute %s is defined but is not a key of the table or an index", tb.LogicalID, d.Name))
			}
		}
		for _, a := range sortedKeys(used) {
			if !defined[a] {
				problems = append(problems, fmt.Sprintf("%s: key attribute %s has no AttributeDefinitions entry", tb.LogicalID, a))
			}
		}
	}
	return problems
}

// checkReferences: every Ref, GetAtt and ${} names a resource, a parameter or a pseudo parameter.
func checkReferences(tpl *Template) []string {
	pseudo := []string{"AWS::Region", "AWS::URLSuffix", "AWS::AccountId", "AWS::StackName", "AWS::Partition", "AWS::NoValue"}
	var problems []string
	for _, r := range tpl.References() {
		_, isRes := tpl.Resources[r.Name]
		_, isParam := tpl.Parameters[r.Name]
		// The role SAM creates for a function without a Role of its own: <LogicalID>Role.
		if fn, ok := tpl.Resources[strings.TrimSuffix(r.Name, "Role")]; ok && r.Attr == "" && strings.HasSuffix(r.Name, "Role") && fn.Type == TypeFunction {
			isRes = true
		}
		switch {
		case r.Attr != "" && !isRes:
			problems = append(problems, fmt.Sprintf("%s: GetAtt %s.%s names no resource of the template", r.Where, r.Name, r.Attr))
		case r.Attr == "" && !isRes && !isParam && !slices.Contains(pseudo, r.Name):
			problems = append(problems, fmt.Sprintf("%s: Ref %s names no resource, parameter or supported pseudo parameter", r.Where, r.Name))
		}
	}
	return problems
}

// checkSecretParameters: parameters named like secrets or keys are NoEcho.
func checkSecretParameters(tpl *Template) []string {
	var problems []string
	for _, name := range sortedKeys(tpl.Parameters) {
		if name == "SecretsSource" || name == "SecretsPrefix" { // where the secrets are, not a secret
			continue
		}
		if (strings.Contains(name, "Secret") || strings.Contains(name, "Key")) && !tpl.Parameters[name].NoEcho {
			problems = append(problems, fmt.Sprintf("parameter %s looks like a secret but is not NoEcho: true", name))
		}
	}
	return problems
}

// checkPolicies: a function whose environment names a table or a queue has a policy for it: a
// policy template whose parameters name it, or a managed policy or policy document (which this
// test does not inspect).
func checkPolicies(tpl *Template) []string {
	var problems []string
	for _, fn := range tpl.Functions() {
		covered := map[string]bool{}
		opaque := false
		for _, p := range fn.Policies {
			if p.Template == "" {
				opaque = true
			}
			for _, v := range p.Args {
				for _, r := range v.References() {
					covered[r.Name] = true
				}
			}
		}
		for _, k := range sortedKeys(fn.Env) {
			for _, r := range fn.Env[k].References() {
				typ := tpl.Resources[r.Name].Type
				if typ != TypeTable && typ != TypeQueue {
					continue
				}
				switch {
				case len(fn.Policies) == 0:
					problems = append(problems, fmt.Sprintf("%s: Environment %s names %s (%s) but the function has no Policies", fn.LogicalID, k, r.Name, typ))
				case !covered[r.Name] && !opaque:
					problems = append(problems, fmt.Sprintf("%s: Environment %s names %s (%s) but no policy template of the function names it", fn.LogicalID, k, r.Name, typ))
				}
			}
		}
	}
	return problems
}

// envReads lists the HOOKGATE_* string literals in the non-test Go files of the packages of this
// module that functions/<dir> is built from, each with the files it appears in.
func envReads(root, module, dir string) (map[string][]string, error) {
	cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}\t{{.Dir}}\t{{join .GoFiles \"\\t\"}}", "./functions/"+dir)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list -deps ./functions/%s: %v: %s", dir, err, strings.TrimSpace(stderr.String()))
	}
	varRe := regexp.MustCompile(`^HOOKGATE_[A-Z0-9_]+$`)
	reads := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) < 2 || (f[0] != module && !strings.HasPrefix(f[0], module+"/")) {
			continue
		}
		for _, name := range f[2:] {
			if name == "" {
				continue
			}
			path := filepath.Join(f[1], name)
			src, err := os.ReadFile(path)
			if err != nil {
				return nil, err
			}
			rel, err := filepath.Rel(root, path)
			if err != nil {
				rel = path
			}
			fset := token.NewFileSet()
			var s scanner.Scanner
			s.Init(fset.AddFile(path, -1, len(src)), src, nil, 0)
			for {
				_, tok, lit := s.Scan()
				if tok == token.EOF {
					break
				}
				if tok != token.STRING {
					continue
				}
				v, err := strconv.Unquote(lit)
				if err != nil || !varRe.MatchString(v) {
					continue
				}
				if !slices.Contains(reads[v], rel) {
					reads[v] = append(reads[v], rel)
				}
			}
		}
	}
	return reads, nil
}

// checkEnvReads: every HOOKGATE_* variable the function's code names is set by the template,
// except the optional local-only ones of optionalEnv.
func checkEnvReads(fn Function, reads map[string][]string) []string {
	var problems []string
	for _, v := range sortedKeys(reads) {
		if optionalEnv[v] {
			continue
		}
		// shared/opsecrets names every operator secret, and reads only those the function's
		// environment declares.
		if slices.Equal(reads[v], []string{"shared/opsecrets/opsecrets.go"}) {
			continue
		}
		if _, ok := fn.Env[v]; !ok {
			problems = append(problems, fmt.Sprintf("%s: the code reads %s (%s) but the template does not set it in Environment.Variables", fn.LogicalID, v, strings.Join(reads[v], ", ")))
		}
	}
	return problems
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
