package doors

import (
	"context"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/hookgate/hookgate/local/emulator/emulatortest"
	"github.com/hookgate/hookgate/shared/limit"
)

func TestMain(m *testing.M) { os.Exit(emulatortest.Run(m)) }

// A message the gate refuses is a 429 with Retry-After; nothing is queued, and the delivery id it
// claimed is released, so that the sender's retry after Retry-After is processed.
func TestRefusedAdmissionReleasesTheClaim(t *testing.T) {
	for _, dr := range sampleDoors {
		t.Run(dr.name, func(t *testing.T) {
			h := newHarness(t, sampleTime(sample(t, dr.sample)))
			db, table := emulatortest.Table(t, "doors")
			gate := limit.NewGate(limit.New(db, table, h.clock.now), limit.GateConfig{Events: limit.Rule{Burst: 1, Every: time.Minute}}, h.clock.now)
			h.doors.WithGate(gate)
			if _, err := gate.Admit(context.Background(), "default", false); err != nil { // the workspace's one token
				t.Fatal(err)
			}
			r := dr.post(t, h)
			if r.status != http.StatusTooManyRequests || r.errorCode() != "rate_limited" || r.header["retry-after"] != "60" {
				t.Fatalf("over the rate: %d %v %s", r.status, r.header, r.raw)
			}
			if sends, _ := h.sqs.counts(); sends != 0 {
				t.Fatalf("%d sends of a refused message", sends)
			}
			if dr.scope != "" && h.store.claimed("default", dr.scope, dr.key) {
				t.Fatal("the refused message's delivery id stays claimed: its retry would be dropped as a duplicate")
			}
			h.clock.advance(time.Minute)
			if r := dr.post(t, h); r.status != http.StatusAccepted {
				t.Fatalf("retry after Retry-After: %d %s", r.status, r.raw)
			}
			if _, accepted := h.sqs.counts(); accepted != 1 {
				t.Fatalf("%d queued, want 1", accepted)
			}
		})
	}
}

// A copy that finds the delivery id claimed but not queued (its claimant is at work, or was just
// refused by the gate) passes the gate too: concurrent copies cannot slip past the rate and the
// run budget.
func TestCopyOfAnUnqueuedClaimIsAdmitted(t *testing.T) {
	for _, dr := range sampleDoors {
		if dr.scope == "" {
			continue
		}
		t.Run(dr.name, func(t *testing.T) {
			h := newHarness(t, sampleTime(sample(t, dr.sample)))
			db, table := emulatortest.Table(t, "doors")
			gate := limit.NewGate(limit.New(db, table, h.clock.now), limit.GateConfig{Events: limit.Rule{Burst: 1, Every: time.Minute}}, h.clock.now)
			h.doors.WithGate(gate)
			if _, err := gate.Admit(context.Background(), "default", false); err != nil { // the workspace's one token
				t.Fatal(err)
			}
			// Another copy claimed the id and has not queued it.
			if c, err := h.store.ClaimDedupe(context.Background(), "default", dr.scope, dr.key, time.Hour); err != nil || !c.Won {
				t.Fatalf("claim: %+v %v", c, err)
			}
			r := dr.post(t, h)
			if r.status != http.StatusTooManyRequests || r.errorCode() != "rate_limited" {
				t.Fatalf("a copy of an unqueued claim over the rate: %d %s", r.status, r.raw)
			}
			if sends, _ := h.sqs.counts(); sends != 0 {
				t.Fatalf("%d sends of a refused copy", sends)
			}
		})
	}
}
