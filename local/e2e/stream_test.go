package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
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

// Three writers append 3,000 events concurrently while a reader follows the stream, dropping its
// connection every 100 events and resuming from the last id it saw: it ends with every event once,
// in log order.
func TestEventStreamResumesWithoutLossOrRepeats(t *testing.T) {
	t.Parallel() // doc.go says which tests may
	e := liveStack(t)
	ws := uniqueWS("three")
	key := apiKey(t, e, ws)
	const writers, perWriter, goroutines = 3, 1000, 5
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	var wg sync.WaitGroup
	errs := make(chan error, writers*goroutines)
	for w := range writers {
		lw := store.NewLogWriter(store.New(e.db, e.table, time.Now)) // one per writer, as one per Lambda instance
		for g := range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := g; i < perWriter; i += goroutines {
					id := fmt.Sprintf("evt_w%d_%04d", w, i)
					_, err := lw.AppendEvents(ctx, []store.Event{{ID: id, Type: "test.appended", WorkspaceID: ws, Data: json.RawMessage(fmt.Sprintf(`{"writer":%d,"i":%d}`, w, i))}})
					if err != nil {
						errs <- fmt.Errorf("writer %d: %w", w, err)
						return
					}
				}
			}()
		}
	}

	seen := map[string]int64{}
	var order []int64
	lastID, connections := "", 0
	url := e.stack.URL + "/v1/events/stream"
	for len(order) < writers*perWriter {
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d events before the deadline", len(order), writers*perWriter)
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
			cursor, _ := strconv.ParseInt(ev.ID, 10, 64)
			if prev, dup := seen[env.ID]; dup {
				t.Fatalf("event %s delivered twice (cursors %d and %d)", env.ID, prev, cursor)
			}
			if len(order) > 0 && cursor != order[len(order)-1]+1 {
				t.Fatalf("cursor %d follows %d: not in log order, or one was lost", cursor, order[len(order)-1])
			}
			if len(order) == 0 && cursor != 1 {
				t.Fatalf("the first event has cursor %d", cursor)
			}
			if env.WorkspaceID != ws || env.Type != "test.appended" || ev.Name != "test.appended" {
				t.Fatalf("event %+v", env)
			}
			seen[env.ID] = cursor
			order = append(order, cursor)
		}
		lastID = rd.LastEventID
		resp.Body.Close()
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
	if len(seen) != writers*perWriter || connections < writers*perWriter/100 {
		t.Fatalf("%d events over %d connections", len(seen), connections)
	}
	// The log agrees: the stream's order is the log's.
	logged, err := e.store.ListEvents(context.Background(), ws, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range logged {
		if seen[ev.ID] != ev.Cursor {
			t.Fatalf("event %s is at %d in the log, the stream said %d", ev.ID, ev.Cursor, seen[ev.ID])
		}
	}
	t.Logf("3,000 events over %d connections", connections)
}

// A key of workspace A sees A's events only, a connected reader gets a new event while it waits,
// and the admin key reads the default workspace.
func TestEventStreamWorkspaceIsolation(t *testing.T) {
	t.Parallel() // doc.go says which tests may
	e := liveStack(t)
	a, b := uniqueWS("iso-a"), uniqueWS("iso-b")
	keyA, keyB := apiKey(t, e, a), apiKey(t, e, b)
	ctx := context.Background()
	for i := range 5 {
		for _, ws := range []string{a, b} {
			if _, err := e.store.AppendEvent(ctx, store.Event{ID: fmt.Sprintf("evt_%s_%d", ws, i), Type: "run.created", WorkspaceID: ws, Data: json.RawMessage(`{"of":"` + ws + `"}`)}); err != nil {
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
	if _, err := e.store.AppendEvent(ctx, store.Event{ID: "evt_b_late", Type: "run.completed", WorkspaceID: b}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	sent := time.Now()
	if _, err := e.store.AppendEvent(ctx, store.Event{ID: "evt_a_late", Type: "run.completed", WorkspaceID: a}); err != nil {
		t.Fatal(err)
	}
	w := <-got
	if len(w.events) != 1 || !strings.Contains(w.events[0].Data, "evt_a_late") || w.lastID != "6" {
		t.Fatalf("the waiting reader got %+v (%s)", w.events, w.raw)
	}
	t.Logf("a new event reached the waiting reader %s after its append", time.Since(sent).Round(time.Millisecond))
}

func TestEventStreamBadInput(t *testing.T) {
	t.Parallel() // doc.go says which tests may
	e := liveStack(t)
	ws := uniqueWS("bad")
	key := apiKey(t, e, ws)
	if _, err := e.store.AppendEvent(context.Background(), store.Event{ID: "evt_1", Type: "run.created", WorkspaceID: ws}); err != nil {
		t.Fatal(err)
	}
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
		{"unknown cursor", url + "?since=2", k, 400, "invalid_request"},
		{"bad type filter", url + "?types=run.%2A,nope", k, 400, "invalid_request"},
		{"no key", url, nil, 401, "unauthorized"},
		{"wrong key", url, map[string]string{"X-API-Key": "hgk_" + strings.Repeat("b", 40)}, 401, "unauthorized"},
		{"key of nothing", url, map[string]string{"Authorization": "Bearer not-a-key"}, 401, "unauthorized"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := do(t, http.MethodGet, c.url, c.headers, "")
			if r.status != c.status || r.errorCode() != c.code {
				t.Fatalf("got %d %s, want %d %s", r.status, r.raw, c.status, c.code)
			}
		})
	}
}

// A cursor whose commit is not visible yet is never passed: events after it wait for it.
func TestEventStreamWaitsForALateCommit(t *testing.T) {
	t.Parallel() // doc.go says which tests may
	e := liveStack(t)
	ws := uniqueWS("late")
	key := apiKey(t, e, ws)
	ctx := context.Background()
	for i := 1; i <= 2; i++ {
		if _, err := e.store.AppendEvent(ctx, store.Event{ID: fmt.Sprintf("evt_%d", i), Type: "run.created", WorkspaceID: ws}); err != nil {
			t.Fatal(err)
		}
	}
	// Cursor 4 becomes visible before 3, as two overlapping commits can on DynamoDB.
	put := func(cursor int64) {
		t.Helper()
		item := map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: "WS#" + ws + "#EV"}, "sk": &types.AttributeValueMemberS{Value: fmt.Sprintf("%019d", cursor)},
			"event_id": &types.AttributeValueMemberS{Value: fmt.Sprintf("evt_%d", cursor)}, "type": &types.AttributeValueMemberS{Value: "run.completed"},
			"created_at": &types.AttributeValueMemberS{Value: time.Now().UTC().Format(time.RFC3339Nano)}, "data": &types.AttributeValueMemberS{Value: "{}"},
		}
		if _, err := e.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(e.table), Item: item}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(e.table),
		Key:              map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "WS#" + ws + "#EVSEQ"}, "sk": &types.AttributeValueMemberS{Value: "SEQ"}},
		UpdateExpression: aws.String("SET seq = :n"), ExpressionAttributeValues: map[string]types.AttributeValue{":n": &types.AttributeValueMemberN{Value: "4"}},
	}); err != nil {
		t.Fatal(err)
	}
	put(4)
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
		put(3)
	}()
	w = streamOnce(t, url, h, "2")
	if len(w.events) != 2 || w.events[0].ID != "3" || w.events[1].ID != "4" || w.lastID != "4" {
		t.Fatalf("after the late commit: %+v", w.events)
	}
}
