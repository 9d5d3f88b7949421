package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/hookgate/hookgate/local/ssetest"
	"github.com/hookgate/hookgate/shared/awscfg"
	"github.com/hookgate/hookgate/shared/store"
)

// The live-view tests share a stack whose stream windows last 3 s (20 s on AWS), so that an idle
// window ends within a test's patience; everything else is the template's.
const (
	liveWindow = 3 * time.Second
	widgetKey  = "test-widget-signing-key-0123"
)

var (
	liveOnce sync.Once
	live     *liveEnv
	liveErr  error
)

type liveEnv struct {
	*env
	db    *dynamodb.Client
	table string
	shop  *httptest.Server // a site on another origin that embeds the widget, and is allowed to
}

// embedPage is a third-party page that embeds the widget of the stack at api with its one tag.
func embedPage(api func() string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>A shop</title><link rel="icon" href="data:,"></head>
<body><h1>A shop on another origin</h1><script src="%s/widget.js" data-title="Shop chat" data-open="true" async></script></body></html>`, api())
	})
}

func liveStack(t *testing.T) *liveEnv {
	t.Helper()
	liveOnce.Do(func() {
		var e *env
		shop := httptest.NewServer(embedPage(func() string { return e.stack.URL }))
		e, liveErr = startSharedStack(t, "live", time.Second, map[string]string{
			"StreamWindowSeconds": strconv.Itoa(int(liveWindow / time.Second)), "WidgetSigningKey": widgetKey,
			"WidgetAllowedOrigins": shop.URL, // local mode adds its own origin
		}, nil)
		if liveErr != nil {
			shop.Close()
			return
		}
		e.syntheticEvents.Store(true) // the stream tests append events of their own to the log
		cfg, err := awscfg.Load(context.Background(), func(k string) string {
			return map[string]string{awscfg.EnvDynamoEndpoint: e.stack.DynamoEndpoint}[k]
		})
		if err != nil {
			liveErr = err
			return
		}
		live = &liveEnv{env: e, db: cfg.DynamoDB(), table: e.stack.Tables["Table"], shop: shop}
	})
	if liveErr != nil {
		t.Fatalf("start the live stack: %v", liveErr)
	}
	return live
}

// apiKey creates an API key for ws through the management API.
func apiKey(t *testing.T, e *liveEnv, ws string) string {
	t.Helper()
	r := do(t, http.MethodPost, e.stack.URL+"/v1/api-keys", adminHeaders(), fmt.Sprintf(`{"name":"reader","workspace_id":%q}`, ws))
	if r.status != 201 {
		t.Fatalf("create api key: %d %s", r.status, r.raw)
	}
	return r.body["key"].(string)
}

func uniqueWS(prefix string) string { return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()%1e12) }

// window is one response of the event stream, read as a browser would.
type window struct {
	status int
	events []ssetest.Event
	lastID string
	raw    string
}

// streamOnce makes one request to the event stream and reads the whole response.
func streamOnce(t *testing.T, url string, headers map[string]string, lastID string) window {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := apiClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	w := window{status: resp.StatusCode, raw: string(raw)}
	if resp.StatusCode == 200 {
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
			t.Fatalf("content type %q", ct)
		}
		rd := ssetest.NewReader(strings.NewReader(w.raw), lastID)
		w.events, err = rd.All()
		if err != nil {
			t.Fatal(err)
		}
		w.lastID = rd.LastEventID
	}
	return w
}

type envelope struct {
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	CreatedAt   string          `json:"created_at"`
	WorkspaceID string          `json:"workspace_id"`
	Data        json.RawMessage `json:"data"`
}

// logCase is the log a stream test reads: one shard, as the stack's own writers make it, or four,
// made by the test's own writers (store.WithShards(4), appending Spread events, which are dealt to
// the shards by id). The stack's EventStream reads either with no setting: it reads the mark.
type logCase struct {
	name   string
	shards int
}

// forLogs runs test on a log of one shard and on one of four, side by side on the same stack
// (each in workspaces of its own).
func forLogs(t *testing.T, test func(t *testing.T, c logCase)) {
	t.Helper()
	for _, c := range []logCase{{"shards-1", 1}, {"shards-4", 4}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel() // doc.go says which tests may
			test(t, c)
		})
	}
}

// writer is a store that appends to the case's log.
func (c logCase) writer(e *liveEnv) *store.Store {
	return store.New(e.db, e.table, time.Now).WithShards(c.shards)
}

// event is an event of the case's log: with more than one shard, Spread.
func (c logCase) event(id, typ, ws, data string) store.Event {
	e := store.Event{ID: id, Type: typ, WorkspaceID: ws, Spread: c.shards > 1}
	if data != "" {
		e.Data = json.RawMessage(data)
	}
	return e
}

// fillShards appends Spread events to ws until each of four shards holds one (the mark is then
// 4), and returns them.
func fillShards(t *testing.T, st *store.Store, ws, prefix string) []store.Event {
	t.Helper()
	var out []store.Event
	for shards := map[int]bool{}; len(shards) < 4; {
		if len(out) == 200 {
			t.Fatalf("200 spread events did not reach four shards: %v", shards)
		}
		ev, err := st.AppendEvent(context.Background(), store.Event{ID: fmt.Sprintf("%s_%d", prefix, len(out)), Type: "run.created", WorkspaceID: ws, Spread: true})
		if err != nil {
			t.Fatal(err)
		}
		shards[ev.Shard] = true
		out = append(out, ev)
	}
	return out
}

// Three writers append 3,000 events concurrently while a reader follows the stream, dropping its
// connection every 100 events and resuming from the last id it saw: it ends with every event once,
// each shard's in log order.
func TestEventStreamResumesWithoutLossOrRepeats(t *testing.T) {
	t.Parallel() // doc.go says which tests may
	e := liveStack(t)
	forLogs(t, func(t *testing.T, c logCase) {
		resumesWithoutLossOrRepeats(t, e, c)
	})
}

func resumesWithoutLossOrRepeats(t *testing.T, e *liveEnv, c logCase) {
	ws := uniqueWS("three")
	key := apiKey(t, e, ws)
	// 3,000 events in one shard; 1,200 in four (300 a shard: pages of 125 a shard, and a dozen
	// resumes), so that the two side by side add less than a second 3,000 would to the long tests.
	const writers, goroutines = 3, 5
	perWriter := 1000
	if c.shards > 1 {
		perWriter = 400
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	var wg sync.WaitGroup
	errs := make(chan error, writers*goroutines)
	for w := range writers {
		lw := store.NewLogWriter(c.writer(e)) // one per writer, as one per Lambda instance
		for g := range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := g; i < perWriter; i += goroutines {
					id := fmt.Sprintf("evt_w%d_%04d", w, i)
					_, err := lw.AppendEvents(ctx, []store.Event{c.event(id, "test.appended", ws, fmt.Sprintf(`{"writer":%d,"i":%d}`, w, i))})
					if err != nil {
						errs <- fmt.Errorf("writer %d: %w", w, err)
						return
					}
				}
			}()
		}
	}

	type at struct {
		shard  int
		cursor int64
	}
	seen := map[string]at{}
	var pos []int64 // where the reader is: each shard's last cursor read
	lastID, connections := "", 0
	url := e.stack.URL + "/v1/events/stream"
	for len(seen) < writers*perWriter {
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d events before the deadline", len(seen), writers*perWriter)
		}
		select {
		case err := <-errs:
			t.Fatal(err)
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"?since=0", nil)
		req.Header.Set("X-API-Key", key)
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		resp, err := apiClient(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("stream: %d %s", resp.StatusCode, b)
		}
		connections++
		rd := ssetest.NewReader(resp.Body, lastID)
		for n := 0; n < 100; n++ { // then hang up, whatever is left in the response
			ev, err := rd.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			var env envelope
			if err := json.Unmarshal([]byte(ev.Data), &env); err != nil {
				t.Fatalf("event %s: %v", ev.ID, err)
			}
			next, err := streamPos(ev.ID)
			if err != nil {
				t.Fatal(err)
			}
			shard, cursor, err := step(pos, next)
			if err != nil { // the first event of each shard is at cursor 1; each next at the one after
				t.Fatalf("event %s: %v: not in its shard's order, or one was lost", env.ID, err)
			}
			if prev, dup := seen[env.ID]; dup {
				t.Fatalf("event %s delivered twice (%+v and shard %d cursor %d)", env.ID, prev, shard, cursor)
			}
			if env.WorkspaceID != ws || env.Type != "test.appended" || ev.Name != "test.appended" {
				t.Fatalf("event %+v", env)
			}
			seen[env.ID] = at{shard, cursor}
			pos = next
		}
		lastID = rd.LastEventID
		resp.Body.Close()
		// A window that ends without an event leaves the position where it was.
		if got, err := streamPos(lastID); lastID != "" && (err != nil || !slices.Equal(padded(got, len(pos)), padded(pos, len(got)))) {
			t.Fatalf("the window ended at %q (%v), the events said %v", lastID, err, pos)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for w := range writers {
		for i := range perWriter {
			if _, ok := seen[fmt.Sprintf("evt_w%d_%04d", w, i)]; !ok {
				t.Fatalf("evt_w%d_%04d never arrived", w, i)
			}
		}
	}
	if len(seen) != writers*perWriter || connections < writers*perWriter/100 || (c.shards > 1 && len(pos) != c.shards) {
		t.Fatalf("%d events over %d connections, ending at %v", len(seen), connections, pos)
	}
	// The log agrees: each event is in the shard, at the cursor, the stream said.
	logged := 0
	for shard := range max(len(pos), 1) {
		for after := int64(0); ; {
			evs, more, err := e.store.ListShard(context.Background(), ws, shard, after, 1000)
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range evs {
				if seen[ev.ID] != (at{shard, ev.Cursor}) {
					t.Fatalf("event %s is at shard %d cursor %d in the log, the stream said %+v", ev.ID, shard, ev.Cursor, seen[ev.ID])
				}
				after = ev.Cursor
			}
			logged += len(evs)
			if !more && len(evs) < 1000 {
				break
			}
		}
	}
	if logged != len(seen) {
		t.Fatalf("the log holds %d events, the stream sent %d", logged, len(seen))
	}
	t.Logf("%d events in %d shards over %d connections", len(seen), len(pos), connections)
}

// A key of workspace A sees A's events only, a connected reader gets a new event while it waits,
// and the admin key reads the default workspace.
func TestEventStreamWorkspaceIsolation(t *testing.T) {
	t.Parallel() // doc.go says which tests may
	e := liveStack(t)
	forLogs(t, func(t *testing.T, c logCase) {
		workspaceIsolation(t, e, c)
	})
}

func workspaceIsolation(t *testing.T, e *liveEnv, c logCase) {
	a, b := uniqueWS("iso-a"), uniqueWS("iso-b")
	keyA, keyB := apiKey(t, e, a), apiKey(t, e, b)
	ctx := context.Background()
	st := c.writer(e)
	for i := range 5 {
		for _, ws := range []string{a, b} {
			if _, err := st.AppendEvent(ctx, c.event(fmt.Sprintf("evt_%s_%d", ws, i), "run.created", ws, `{"of":"`+ws+`"}`)); err != nil {
				t.Fatal(err)
			}
		}
	}
	url := e.stack.URL + "/v1/events/stream"
	for ws, key := range map[string]string{a: keyA, b: keyB} {
		w := streamOnce(t, url, map[string]string{"Authorization": "Bearer " + key}, "")
		if w.status != 200 || len(w.events) != 5 {
			t.Fatalf("%s: %d, %d events: %s", ws, w.status, len(w.events), w.raw)
		}
		for _, ev := range w.events {
			var env envelope
			_ = json.Unmarshal([]byte(ev.Data), &env)
			if env.WorkspaceID != ws || !strings.Contains(string(env.Data), ws) || !strings.HasPrefix(env.ID, "evt_"+ws) {
				t.Fatalf("a stream of %s shows %+v", ws, env)
			}
		}
	}
	if w := streamOnce(t, url, map[string]string{"X-API-Key": adminKey}, ""); strings.Contains(w.raw, a) || strings.Contains(w.raw, b) {
		t.Fatalf("the default workspace's stream shows A or B: %s", w.raw)
	}
	// A's cursor in B's stream says nothing about A: B's log has its own cursors.
	if w := streamOnce(t, url+"?since=6", map[string]string{"X-API-Key": keyB}, ""); w.status != 400 {
		t.Fatalf("B with a cursor past its end: %d %s", w.status, w.raw)
	}
	// A reader waiting on A: an event of B does not wake it, one of A does.
	// A window lasts liveWindow (3 s); under load the appends below can take longer, so the reader
	// reconnects from where its window ended, as EventSource does, until an event arrives.
	got := make(chan window, 1)
	go func() {
		u, last, deadline := url+"?since=now", "", time.Now().Add(time.Minute)
		for {
			w := streamOnce(t, u, map[string]string{"X-API-Key": keyA}, last)
			if len(w.events) > 0 || w.status != 200 || time.Now().After(deadline) {
				got <- w
				return
			}
			u, last = url, w.lastID
		}
	}()
	time.Sleep(300 * time.Millisecond)
	if _, err := st.AppendEvent(ctx, c.event("evt_b_late", "run.completed", b, "")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	sent := time.Now()
	if _, err := st.AppendEvent(ctx, c.event("evt_a_late", "run.completed", a, "")); err != nil {
		t.Fatal(err)
	}
	w := <-got
	pos, err := streamPos(w.lastID)
	if len(w.events) != 1 || !strings.Contains(w.events[0].Data, "evt_a_late") || err != nil || total(pos) != 6 || (c.shards == 1 && w.lastID != "6") {
		t.Fatalf("the waiting reader got %+v (%s)", w.events, w.raw)
	}
	t.Logf("a new event reached the waiting reader %s after its append", time.Since(sent).Round(time.Millisecond))
}

func TestEventStreamBadInput(t *testing.T) {
	t.Parallel() // doc.go says which tests may
	e := liveStack(t)
	forLogs(t, func(t *testing.T, c logCase) {
		badInput(t, e, c)
	})
}

func badInput(t *testing.T, e *liveEnv, c logCase) {
	ws := uniqueWS("bad")
	key := apiKey(t, e, ws)
	if c.shards == 1 {
		if _, err := e.store.AppendEvent(context.Background(), store.Event{ID: "evt_1", Type: "run.created", WorkspaceID: ws}); err != nil {
			t.Fatal(err)
		}
	} else {
		fillShards(t, c.writer(e), ws, "evt")
	}
	head, err := e.store.LogHead(context.Background(), ws)
	if err != nil || len(head) != c.shards {
		t.Fatalf("the log's head %v, %v: want %d shards", head, err, c.shards)
	}
	pastEnd := padded(head, 0)
	pastEnd[len(head)-1]++
	url := e.stack.URL + "/v1/events/stream"
	k := map[string]string{"X-API-Key": key}
	cases := []struct {
		name    string
		url     string
		headers map[string]string
		status  int
		code    string
	}{
		{"malformed cursor", url + "?since=abc", k, 400, "invalid_request"},
		{"negative cursor", url + "?since=-3", k, 400, "invalid_request"},
		{"malformed Last-Event-ID", url, map[string]string{"X-API-Key": key, "Last-Event-ID": "1;2"}, 400, "invalid_request"},
		{"unknown cursor", url + "?since=" + strconv.FormatInt(head[0]+1, 10), k, 400, "invalid_request"},
		{"token past a shard's end", url + "?since=" + v1(pastEnd...), k, 400, "invalid_request"},
		{"token entry at the mark", url + "?since=" + v1(append(padded(head, 0), 1)...), k, 400, "invalid_request"},
		{"token of another version", url + "?since=v2.1", k, 400, "invalid_request"},
		{"token with no entry", url, map[string]string{"X-API-Key": key, "Last-Event-ID": "v1."}, 400, "invalid_request"},
		{"token of 17 entries", url + "?since=v1" + strings.Repeat(".0", 17), k, 400, "invalid_request"},
		{"token with a space", url + "?since=v1.0.%200", k, 400, "invalid_request"},
		{"huge token entry", url + "?since=v1.0.99999999999999999999", k, 400, "invalid_request"},
		{"bad type filter", url + "?types=run.%2A,nope", k, 400, "invalid_request"},
		{"no key", url, nil, 401, "unauthorized"},
		{"wrong key", url, map[string]string{"X-API-Key": "hgk_" + strings.Repeat("b", 40)}, 401, "unauthorized"},
		{"key of nothing", url, map[string]string{"Authorization": "Bearer not-a-key"}, 401, "unauthorized"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, http.MethodGet, tc.url, tc.headers, "")
			if r.status != tc.status || r.errorCode() != tc.code {
				t.Fatalf("got %d %s, want %d %s", r.status, r.raw, tc.status, tc.code)
			}
		})
	}
}

// A cursor whose commit is not visible yet is never passed: events after it wait for it. With four
// shards, the other shards' events flow while the gap's shard waits.
func TestEventStreamWaitsForALateCommit(t *testing.T) {
	t.Parallel() // doc.go says which tests may
	e := liveStack(t)
	forLogs(t, func(t *testing.T, c logCase) {
		if c.shards == 1 {
			waitsForALateCommit(t, e)
		} else {
			waitsForALateCommitInOneShard(t, e, c)
		}
	})
}

// putEvent writes an event item of ws's shard at cursor as an append would, and sets the shard's
// counter to at least cursor (reserved), bypassing the store: so a later cursor becomes visible
// before an earlier one, as two overlapping commits can on DynamoDB.
func putEvent(t *testing.T, e *liveEnv, ws string, shard int, cursor int64, reserve bool) {
	t.Helper()
	ctx := context.Background()
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	if reserve {
		counter := "WS#" + ws + "#EVSEQ"
		if shard > 0 {
			counter += "#" + strconv.Itoa(shard)
		}
		if _, err := e.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(e.table),
			Key:              map[string]types.AttributeValue{"pk": s(counter), "sk": s("SEQ")},
			UpdateExpression: aws.String("SET seq = :n"), ExpressionAttributeValues: map[string]types.AttributeValue{":n": &types.AttributeValueMemberN{Value: strconv.FormatInt(cursor, 10)}},
		}); err != nil {
			t.Fatal(err)
		}
		return
	}
	item := map[string]types.AttributeValue{
		"pk": s(store.EventPK(ws, shard)), "sk": s(fmt.Sprintf("%019d", cursor)),
		"event_id": s(fmt.Sprintf("evt_%d_%d", shard, cursor)), "type": s("run.completed"),
		"created_at": s(time.Now().UTC().Format(time.RFC3339Nano)), "data": s("{}"),
	}
	if _, err := e.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(e.table), Item: item}); err != nil {
		t.Fatal(err)
	}
}

func waitsForALateCommit(t *testing.T, e *liveEnv) {
	ws := uniqueWS("late")
	key := apiKey(t, e, ws)
	ctx := context.Background()
	for i := 1; i <= 2; i++ {
		if _, err := e.store.AppendEvent(ctx, store.Event{ID: fmt.Sprintf("evt_%d", i), Type: "run.created", WorkspaceID: ws}); err != nil {
			t.Fatal(err)
		}
	}
	// Cursor 4 becomes visible before 3, as two overlapping commits can on DynamoDB.
	putEvent(t, e, ws, 0, 4, true)
	putEvent(t, e, ws, 0, 4, false)
	url := e.stack.URL + "/v1/events/stream"
	h := map[string]string{"X-API-Key": key}
	w := streamOnce(t, url, h, "")
	if len(w.events) != 2 || w.lastID != "2" {
		t.Fatalf("before the gap: %+v, last id %q", w.events, w.lastID)
	}
	// Waiting at the gap: nothing, the cursor stays; then 3 appears and both come, in order.
	if w = streamOnce(t, url, h, "2"); len(w.events) != 0 || w.lastID != "2" {
		t.Fatalf("at the gap: %+v, last id %q", w.events, w.lastID)
	}
	go func() {
		time.Sleep(time.Second)
		putEvent(t, e, ws, 0, 3, false)
	}()
	w = streamOnce(t, url, h, "2")
	if len(w.events) != 2 || w.events[0].ID != "3" || w.events[1].ID != "4" || w.lastID != "4" {
		t.Fatalf("after the late commit: %+v", w.events)
	}
}

func waitsForALateCommitInOneShard(t *testing.T, e *liveEnv, c logCase) {
	ws := uniqueWS("late4")
	key := apiKey(t, e, ws)
	ctx := context.Background()
	st := c.writer(e)
	appended := fillShards(t, st, ws, "evt_fill")
	head, err := e.store.LogHead(ctx, ws)
	if err != nil || len(head) != 4 {
		t.Fatalf("the log's head %v, %v: want four shards", head, err)
	}
	// In shard 2, the cursor after the next becomes visible first.
	const gap = 2
	putEvent(t, e, ws, gap, head[gap]+2, true)
	putEvent(t, e, ws, gap, head[gap]+2, false)
	url := e.stack.URL + "/v1/events/stream"
	h := map[string]string{"X-API-Key": key}
	// reads checks a window's events: each the next of its shard, and returns the shards they were in.
	reads := func(w window, from []int64) []int {
		t.Helper()
		var shards []int
		pos := from
		for _, ev := range w.events {
			next, err := streamPos(ev.ID)
			if err != nil {
				t.Fatal(err)
			}
			shard, _, err := step(pos, next)
			if err != nil {
				t.Fatalf("%v in %s", err, w.raw)
			}
			shards, pos = append(shards, shard), next
		}
		if end, err := streamPos(w.lastID); err != nil || !slices.Equal(padded(end, 4), padded(pos, 4)) {
			t.Fatalf("the window ends at %q, its events at %v", w.lastID, pos)
		}
		return shards
	}
	w := streamOnce(t, url, h, "")
	if reads(w, nil); len(w.events) != len(appended) || w.lastID != v1(head...) {
		t.Fatalf("before the gap: %d events of %d, last id %q, want %q", len(w.events), len(appended), w.lastID, v1(head...))
	}
	// Waiting at the gap: nothing, the position stays.
	if w = streamOnce(t, url, h, v1(head...)); len(w.events) != 0 || w.lastID != v1(head...) {
		t.Fatalf("at the gap: %+v, last id %q", w.events, w.lastID)
	}
	// Shards 0, 1 and 3 flow while shard 2 waits: spread events until one lands in another shard
	// (those that land in shard 2 wait after the gap).
	var flowed, held int
	for flowed == 0 {
		if flowed+held == 200 {
			t.Fatal("200 spread events all landed in shard 2")
		}
		ev, err := st.AppendEvent(ctx, c.event(fmt.Sprintf("evt_more_%d", flowed+held), "run.created", ws, ""))
		if err != nil {
			t.Fatal(err)
		}
		if ev.Shard == gap {
			held++
		} else {
			flowed++
		}
	}
	w = streamOnce(t, url, h, v1(head...))
	if shards := reads(w, head); len(shards) != flowed || slices.Contains(shards, gap) {
		t.Fatalf("beside the gap: events of shards %v, want %d of shards other than %d", shards, flowed, gap)
	}
	// Then the late commit appears, and shard 2's events come, in order.
	from := w.lastID
	go func() {
		time.Sleep(time.Second)
		putEvent(t, e, ws, gap, head[gap]+1, false)
	}()
	w = streamOnce(t, url, h, from)
	pos, _ := streamPos(from)
	shards := reads(w, pos)
	if len(shards) != 2+held || slices.ContainsFunc(shards, func(s int) bool { return s != gap }) {
		t.Fatalf("after the late commit: events of shards %v, want %d of shard %d", shards, 2+held, gap)
	}
}
