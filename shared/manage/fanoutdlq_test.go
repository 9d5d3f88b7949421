package manage

import (
	"context"
	"log/slog"
	"testing"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/hookgate/hookgate/shared/fanoutdlq"
)

type fakeReplayer struct {
	limits     []int
	workspaces [][]string
}

func (f *fakeReplayer) Replay(_ context.Context, o fanoutdlq.Options) (fanoutdlq.Result, error) {
	f.limits, f.workspaces = append(f.limits, o.MaxMessages), append(f.workspaces, o.Workspaces)
	return fanoutdlq.Result{Replayed: 1, Records: 3, Remaining: 2}, nil
}

// TestFanoutReplayAdminOnly: the FanoutDLQ replay acts on every workspace's events, so a
// workspace's own key is refused and nothing is replayed; the admin key replays.
func TestFanoutReplayAdminOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	f := &fakeReplayer{}
	log := slog.New(slog.NewJSONHandler(e.logs, nil))
	h := New(Config{DefaultWorkspace: "default", AdminKey: adminKey}, e.st, e.clk.now, log).WithFanoutReplay(f)
	e.invoke = lambda.NewHandler(h.Handle).Invoke

	for _, key := range []string{e.key("default"), e.key("ws-a")} {
		r := e.must(403, call{route: RouteFanoutReplay, key: key})
		if code, _ := r.errorCode(t); code != "forbidden" {
			t.Errorf("workspace key: %s", r.body)
		}
	}
	e.must(401, call{route: RouteFanoutReplay})
	e.must(400, call{route: RouteFanoutReplay, key: adminKey, body: `{"max_messages":51}`})
	e.must(400, call{route: RouteFanoutReplay, key: adminKey, body: `{"shard":"x"}`})
	e.must(400, call{route: RouteFanoutReplay, key: adminKey, body: `{"workspaces":["ok","not/ok"]}`})
	if len(f.limits) != 0 {
		t.Fatalf("replayed for a refused call: %v", f.limits)
	}
	var res fanoutdlq.Result
	e.must(200, call{route: RouteFanoutReplay, key: adminKey}).decode(t, &res)
	e.must(200, call{route: RouteFanoutReplay, key: adminKey, body: `{"max_messages":5,"workspaces":["default","ws-a"]}`})
	if res != (fanoutdlq.Result{Replayed: 1, Records: 3, Remaining: 2}) || len(f.limits) != 2 || f.limits[0] != 0 || f.limits[1] != 5 ||
		len(f.workspaces[0]) != 0 || len(f.workspaces[1]) != 2 || f.workspaces[1][1] != "ws-a" {
		t.Fatalf("result %+v, limits %v, workspaces %v", res, f.limits, f.workspaces)
	}
}
