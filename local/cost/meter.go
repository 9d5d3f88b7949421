package cost

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Line is one row of the DynamoDB breakdown: an operation on one kind of item (its key's labels,
// such as WS#EV/<n>), or on an index (Index set), with the units it was billed.
type Line struct {
	Op, Kind, Index string
	Requests        int
	WriteUnits      float64
	ReadUnits       float64
}

// Usage is what was counted between two Resets.
type Usage struct {
	Dynamo       map[string]*Line // by op|kind|index
	SQS          map[string]int   // billed SQS requests (64 KB chunks) by "Op fifo|standard"
	EmptyPolls   int              // receives that returned nothing (the pollers' idle cost, not per webhook)
	Invocations  map[string]int   // Lambda invocations by function
	LogBytes     map[string]int64 // bytes the functions logged, by function
	HTTPRequests int
	Last         time.Time // when the last billable request was seen
}

func newUsage() *Usage {
	return &Usage{Dynamo: map[string]*Line{}, SQS: map[string]int{}, Invocations: map[string]int{}, LogBytes: map[string]int64{}}
}

// Meter counts requests. Its proxies stand between the stack and the emulators.
type Meter struct {
	dynamo   *url.URL
	client   *http.Client
	mu       sync.Mutex
	u        *Usage
	tables   map[string]*table
	servers  []*http.Server
	listener []net.Listener
}

// New returns a meter in front of a DynamoDB endpoint.
func New(dynamoEndpoint string) (*Meter, error) {
	u, err := url.Parse(dynamoEndpoint)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("dynamodb endpoint %q: not a URL", dynamoEndpoint)
	}
	return &Meter{dynamo: u, client: &http.Client{Timeout: 30 * time.Second}, u: newUsage(), tables: map[string]*table{}}, nil
}

// Reset starts a new count and returns the one that ends.
func (m *Meter) Reset() *Usage {
	m.mu.Lock()
	defer m.mu.Unlock()
	u := m.u
	m.u = newUsage()
	return u
}

// LastBillable is when the last billable request was counted.
func (m *Meter) LastBillable() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.u.Last
}

// Invoked counts one Lambda invocation (stack.Options.OnInvoke).
func (m *Meter) Invoked(function string) {
	m.mu.Lock()
	m.u.Invocations[function]++
	m.mu.Unlock()
}

// HTTPRequest counts one HTTP API request.
func (m *Meter) HTTPRequest() {
	m.mu.Lock()
	m.u.HTTPRequests++
	m.mu.Unlock()
}

// LogWriter counts what the functions log (stack.Options.FunctionLog: lines "[Function] …").
func (m *Meter) LogWriter() io.Writer { return logCounter{m} }

type logCounter struct{ m *Meter }

func (l logCounter) Write(p []byte) (int, error) {
	for line := range bytes.SplitSeq(bytes.TrimRight(p, "\n"), []byte("\n")) {
		fn, rest := "?", line
		if len(line) > 0 && line[0] == '[' {
			if i := bytes.Index(line, []byte("] ")); i > 0 {
				fn, rest = string(line[1:i]), line[i+2:]
			}
		}
		l.m.mu.Lock()
		l.m.u.LogBytes[fn] += int64(len(rest) + 1)
		l.m.mu.Unlock()
	}
	return len(p), nil
}

// Close stops the proxies.
func (m *Meter) Close() {
	for _, s := range m.servers {
		_ = s.Close()
	}
}

func (m *Meter) serve(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	s := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	m.servers = append(m.servers, s)
	go func() { _ = s.Serve(ln) }()
	return "http://" + ln.Addr().String(), nil
}

// DynamoProxy starts the counting proxy in front of DynamoDB and returns its endpoint.
func (m *Meter) DynamoProxy() (string, error) {
	rp := httputil.NewSingleHostReverseProxy(m.dynamo)
	rp.ErrorLog = log.New(io.Discard, "", 0)
	return m.serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := r.Header.Get("X-Amz-Target")
		op, ok := strings.CutPrefix(target, "DynamoDB_20120810.")
		if !ok || !billed(op) {
			rp.ServeHTTP(w, r) // streams (free for a Lambda trigger) and the control plane
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "read request", http.StatusBadRequest)
			return
		}
		var req request
		if err := json.Unmarshal(body, &req); err != nil {
			http.Error(w, "bad json", http.StatusBadRequest)
			return
		}
		ctx := r.Context()
		pre := m.images(ctx, op, &req)
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		r.Header.Del("Accept-Encoding") // read the answer as the SDK does, uncompressed
		rec := httptest.NewRecorder()
		rp.ServeHTTP(rec, r)
		var post map[string]item
		if rec.Code == http.StatusOK && (op == "UpdateItem" || op == "TransactWriteItems") {
			post = m.images(ctx, op, &req)
		}
		m.bill(op, &req, rec.Code, rec.Body.Bytes(), pre, post)
		maps.Copy(w.Header(), rec.Header())
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}))
}

func billed(op string) bool {
	switch op {
	case "PutItem", "UpdateItem", "DeleteItem", "GetItem", "Query", "Scan",
		"BatchWriteItem", "BatchGetItem", "TransactWriteItems", "TransactGetItems":
		return true
	}
	return false
}

// request holds the fields of every data-plane operation that billing needs.
type request struct {
	TableName                 string
	Key, Item                 item
	IndexName                 string
	KeyConditionExpression    string
	ExpressionAttributeNames  map[string]string
	ExpressionAttributeValues item
	ConsistentRead            bool
	ReturnConsumedCapacity    string
	TransactItems             []struct {
		Put, Update, Delete, ConditionCheck, Get *struct {
			TableName string
			Key, Item item
		}
	}
	RequestItems map[string]json.RawMessage
}

type table struct {
	keys []string // partition key, sort key
	gsis []gsi
}

type gsi struct {
	name       string
	keys       []string
	projection string   // ALL, KEYS_ONLY, INCLUDE
	include    []string // INCLUDE's attributes
}

// call sends one request to DynamoDB directly (not counted).
func (m *Meter) call(ctx context.Context, op string, in any, out any) error {
	b, _ := json.Marshal(in)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.dynamo.String(), bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.Header.Set("X-Amz-Target", "DynamoDB_20120810."+op)
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0")
	resp, err := m.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %d %s", op, resp.StatusCode, data)
	}
	return json.Unmarshal(data, out)
}

func (m *Meter) table(ctx context.Context, name string) *table {
	m.mu.Lock()
	t := m.tables[name]
	m.mu.Unlock()
	if t != nil {
		return t
	}
	var out struct {
		Table struct {
			KeySchema []struct{ AttributeName, KeyType string }
			GSIs      []struct {
				IndexName  string
				KeySchema  []struct{ AttributeName, KeyType string }
				Projection struct {
					ProjectionType   string
					NonKeyAttributes []string
				}
			} `json:"GlobalSecondaryIndexes"`
		}
	}
	t = &table{}
	if err := m.call(ctx, "DescribeTable", map[string]string{"TableName": name}, &out); err != nil {
		return t
	}
	for _, k := range out.Table.KeySchema {
		t.keys = append(t.keys, k.AttributeName)
	}
	for _, g := range out.Table.GSIs {
		x := gsi{name: g.IndexName, projection: g.Projection.ProjectionType, include: g.Projection.NonKeyAttributes}
		for _, k := range g.KeySchema {
			x.keys = append(x.keys, k.AttributeName)
		}
		t.gsis = append(t.gsis, x)
	}
	m.mu.Lock()
	m.tables[name] = t
	m.mu.Unlock()
	return t
}

func (t *table) keyOf(it item) item {
	k := item{}
	for _, a := range t.keys {
		if v, ok := it[a]; ok {
			k[a] = v
		}
	}
	return k
}

// get reads an item as it is now (nil when there is none).
func (m *Meter) get(ctx context.Context, tableName string, key item) item {
	var out struct{ Item item }
	if err := m.call(ctx, "GetItem", map[string]any{"TableName": tableName, "Key": key, "ConsistentRead": true}, &out); err != nil {
		return nil
	}
	return out.Item
}

// images reads the items a write touches, by "table|key".
func (m *Meter) images(ctx context.Context, op string, req *request) map[string]item {
	out := map[string]item{}
	add := func(tableName string, key item) {
		if len(key) == 0 {
			return
		}
		out[imageKey(tableName, key)] = m.get(ctx, tableName, key)
	}
	switch op {
	case "PutItem":
		add(req.TableName, m.table(ctx, req.TableName).keyOf(req.Item))
	case "UpdateItem", "DeleteItem", "GetItem":
		add(req.TableName, req.Key)
	case "TransactWriteItems", "TransactGetItems":
		for _, ti := range req.TransactItems {
			for _, x := range []*struct {
				TableName string
				Key, Item item
			}{ti.Put, ti.Update, ti.Delete, ti.ConditionCheck, ti.Get} {
				if x == nil {
					continue
				}
				k := x.Key
				if x.Item != nil {
					k = m.table(ctx, x.TableName).keyOf(x.Item)
				}
				add(x.TableName, k)
			}
		}
	case "BatchWriteItem", "BatchGetItem":
		for tableName, raw := range req.RequestItems {
			if op == "BatchGetItem" {
				var g struct{ Keys []item }
				_ = json.Unmarshal(raw, &g)
				for _, k := range g.Keys {
					add(tableName, k)
				}
				continue
			}
			var ws []struct {
				PutRequest    *struct{ Item item }
				DeleteRequest *struct{ Key item }
			}
			_ = json.Unmarshal(raw, &ws)
			for _, w := range ws {
				if w.PutRequest != nil {
					add(tableName, m.table(ctx, tableName).keyOf(w.PutRequest.Item))
				}
				if w.DeleteRequest != nil {
					add(tableName, w.DeleteRequest.Key)
				}
			}
		}
	}
	return out
}

func imageKey(tableName string, key item) string {
	b, _ := json.Marshal(key) // map keys sorted
	return tableName + "|" + string(b)
}

// bill turns one request into units.
func (m *Meter) bill(op string, req *request, status int, resp []byte, pre, post map[string]item) {
	ctx := context.Background()
	var errType struct {
		Type string `json:"__type"`
	}
	if status != http.StatusOK {
		_ = json.Unmarshal(resp, &errType)
	}
	failed := status != http.StatusOK
	condFailed := strings.HasSuffix(errType.Type, "ConditionalCheckFailedException")
	cancelled := strings.HasSuffix(errType.Type, "TransactionCanceledException")
	if failed && !condFailed && !cancelled {
		return // refused before any work: not billed
	}
	opName := op
	if condFailed {
		opName += " (condition failed)"
	}
	if cancelled {
		opName += " (cancelled)"
	}
	m.mu.Lock()
	m.u.Last = time.Now()
	m.mu.Unlock()

	write := func(tableName string, key item, after item, isDelete bool, mult float64, first bool) {
		t := m.table(ctx, tableName)
		before := pre[imageKey(tableName, key)]
		size := itemSize(before)
		if !isDelete {
			size = max(size, itemSize(after))
		}
		kind := kindOf(firstNonNil(after, before, key))
		m.add(opName, kind, "", first, mult*float64(units(size, 1024)), 0)
		if failed {
			return
		}
		if isDelete {
			after = nil
		}
		for _, g := range t.gsis {
			o, n := project(t, g, before), project(t, g, after)
			w := 0
			switch {
			case o == nil && n == nil:
			case o == nil:
				w = units(itemSize(n), 1024)
			case n == nil:
				w = units(itemSize(o), 1024)
			case !sameKeys(g, o, n):
				w = units(itemSize(o), 1024) + units(itemSize(n), 1024)
			case !reflect.DeepEqual(o, n):
				w = units(max(itemSize(o), itemSize(n)), 1024)
			}
			if w > 0 {
				m.add(opName, kind, g.name, false, float64(w), 0)
			}
		}
	}
	read := func(tableName string, key item, consistent bool, mult float64, first bool) {
		it := pre[imageKey(tableName, key)]
		u := float64(units(itemSize(it), 4096))
		if !consistent {
			u /= 2
		}
		m.add(opName, kindOf(firstNonNil(it, key)), "", first, 0, mult*u)
	}

	switch op {
	case "PutItem":
		write(req.TableName, m.table(ctx, req.TableName).keyOf(req.Item), req.Item, false, 1, true)
	case "UpdateItem":
		write(req.TableName, req.Key, post[imageKey(req.TableName, req.Key)], false, 1, true)
	case "DeleteItem":
		write(req.TableName, req.Key, nil, true, 1, true)
	case "GetItem":
		read(req.TableName, req.Key, req.ConsistentRead, 1, true)
	case "TransactWriteItems":
		for i, ti := range req.TransactItems {
			switch {
			case ti.Put != nil:
				write(ti.Put.TableName, m.table(ctx, ti.Put.TableName).keyOf(ti.Put.Item), ti.Put.Item, false, 2, i == 0)
			case ti.Update != nil:
				write(ti.Update.TableName, ti.Update.Key, post[imageKey(ti.Update.TableName, ti.Update.Key)], false, 2, i == 0)
			case ti.Delete != nil:
				write(ti.Delete.TableName, ti.Delete.Key, nil, true, 2, i == 0)
			case ti.ConditionCheck != nil:
				// A condition check is billed as a transactional write of the item it reads.
				c := ti.ConditionCheck
				before := pre[imageKey(c.TableName, c.Key)]
				m.add(opName+" check", kindOf(firstNonNil(before, c.Key)), "", i == 0, 2*float64(units(itemSize(before), 1024)), 0)
			}
		}
	case "TransactGetItems":
		for i, ti := range req.TransactItems {
			if ti.Get != nil {
				read(ti.Get.TableName, ti.Get.Key, true, 2, i == 0)
			}
		}
	case "BatchGetItem":
		first := true
		for tableName, raw := range req.RequestItems {
			var g struct {
				Keys           []item
				ConsistentRead bool
			}
			_ = json.Unmarshal(raw, &g)
			for _, k := range g.Keys {
				read(tableName, k, g.ConsistentRead, 1, first)
				first = false
			}
		}
	case "BatchWriteItem":
		first := true
		for tableName, raw := range req.RequestItems {
			var ws []struct {
				PutRequest    *struct{ Item item }
				DeleteRequest *struct{ Key item }
			}
			_ = json.Unmarshal(raw, &ws)
			for _, w := range ws {
				if w.PutRequest != nil {
					write(tableName, m.table(ctx, tableName).keyOf(w.PutRequest.Item), w.PutRequest.Item, false, 1, first)
				} else if w.DeleteRequest != nil {
					write(tableName, w.DeleteRequest.Key, nil, true, 1, first)
				}
				first = false
			}
		}
	case "Query", "Scan":
		// Read units are the size of every item read (before a ProjectionExpression), in started
		// 4 KB for the whole page, halved when eventually consistent; on an index, the size of the
		// index entries (the attributes the index projects), not of the table's items. The answer
		// holds the items after the ProjectionExpression; read them whole to size them. Items a
		// FilterExpression dropped are billed by AWS but not in the answer: not counted here.
		var out struct{ Items []item }
		_ = json.Unmarshal(resp, &out)
		t := m.table(ctx, req.TableName)
		idx := slices.IndexFunc(t.gsis, func(g gsi) bool { return g.name == req.IndexName })
		size := 0
		for _, it := range out.Items {
			k := t.keyOf(it)
			if len(k) != len(t.keys) {
				size += itemSize(it)
				continue
			}
			full := m.get(ctx, req.TableName, k)
			if idx >= 0 {
				full = project(t, t.gsis[idx], full)
			}
			size += itemSize(full)
		}
		u := float64(units(size, 4096))
		if !req.ConsistentRead {
			u /= 2
		}
		m.add(opName, queryKind(req), req.IndexName, true, 0, u)
	}
}

func (m *Meter) add(op, kind, index string, request bool, w, r float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := op + "|" + kind + "|" + index
	l := m.u.Dynamo[k]
	if l == nil {
		l = &Line{Op: op, Kind: kind, Index: index}
		m.u.Dynamo[k] = l
	}
	if request {
		l.Requests++
	}
	l.WriteUnits += w
	l.ReadUnits += r
}

func firstNonNil(its ...item) item {
	for _, it := range its {
		if len(it) > 0 {
			return it
		}
	}
	return nil
}

// project is an item as index g holds it (nil when the item lacks the index's keys).
func project(t *table, g gsi, it item) item {
	if it == nil {
		return nil
	}
	for _, k := range g.keys {
		if _, ok := it[k]; !ok {
			return nil
		}
	}
	if g.projection == "ALL" {
		return it
	}
	out := item{}
	for _, k := range append(append(append([]string{}, t.keys...), g.keys...), g.include...) {
		if v, ok := it[k]; ok {
			out[k] = v
		}
	}
	return out
}

func sameKeys(g gsi, a, b item) bool {
	for _, k := range g.keys {
		if !reflect.DeepEqual(a[k], b[k]) {
			return false
		}
	}
	return true
}

// isLabel: an upper-case word of a key (WS, EV, DLV), not an id.
func isLabel(s string) bool {
	if s == "" || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	return strings.Trim(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == ""
}

// kindOf names an item by the labels of its key: pk WS#default#DLV#dlv_1, sk ATT#0001#0002 →
// WS#DLV/ATT; digits → <n>.
func kindOf(it item) string {
	return keyKind(strAttr(it, "pk"), strAttr(it, "sk"))
}

func keyKind(pk, sk string) string {
	var labels []string
	for _, p := range strings.Split(pk, "#") {
		if isLabel(p) {
			labels = append(labels, p)
		}
	}
	k := strings.Join(labels, "#")
	if sk == "" {
		return k
	}
	head, _, _ := strings.Cut(sk, "#")
	switch {
	case isLabel(head):
		return k + "/" + head
	case strings.Trim(head, "0123456789") == "":
		return k + "/<n>"
	}
	return k + "/…"
}

func strAttr(it item, name string) string {
	var s string
	if v, ok := it[name]["S"]; ok {
		_ = json.Unmarshal(v, &s)
	}
	return s
}

func queryKind(req *request) string {
	// The partition key's value: the first placeholder of the key condition ("pk = :pk AND …").
	_, rest, ok := strings.Cut(req.KeyConditionExpression, ":")
	if !ok {
		return "scan"
	}
	name := ":" + strings.FieldsFunc(rest, func(r rune) bool { return r == ' ' || r == ')' })[0]
	v := strAttr(req.ExpressionAttributeValues, name)
	if req.IndexName != "" {
		return "index " + keyKind(v, "")
	}
	return keyKind(v, "") + "/*"
}

// Lines returns the breakdown sorted by op, kind, index.
func (u *Usage) Lines() []Line {
	var out []Line
	for _, l := range u.Dynamo {
		out = append(out, *l)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Op != b.Op {
			return a.Op < b.Op
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.Index < b.Index
	})
	return out
}
