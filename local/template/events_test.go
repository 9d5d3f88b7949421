package template

import (
	"bytes"
	"cmp"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

// TestSampleEvents: every function of template.yaml has a sample event in events/ that its event
// source could send (for `sam local invoke -e` and the handler tests). A sample belongs to the
// function whose folder under functions/ (from the Makefile's build-<LogicalId> target) names it:
// events/<folder>.json or events/<folder>-<what>.json. Every sample must belong to a function and
// match it.
func TestSampleEvents(t *testing.T) {
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
	samples, err := readSamples(filepath.Join(root, "events"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range checkSamples(tpl, parseMakefile(string(mkData)).targets, samples) {
		t.Error(p)
	}
}

// readSamples returns the .json files of dir by name.
func readSamples(dir string) (map[string][]byte, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, e := range entries {
		if e.IsDir() || filepath.Ext(e.Name()) != ".json" {
			continue
		}
		if out[e.Name()], err = os.ReadFile(filepath.Join(dir, e.Name())); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// sampleOwner returns the function a sample file belongs to: the one with the longest folder
// that is the file's base name or a prefix of it followed by "-".
func sampleOwner(file string, folders map[string]string) string {
	base := strings.TrimSuffix(file, ".json")
	owner, best := "", -1
	for id, dir := range folders {
		longer := len(dir) > best || len(dir) == best && id < owner // ties: by logical id, for a stable answer
		if dir != "" && (base == dir || strings.HasPrefix(base, dir+"-")) && longer {
			owner, best = id, len(dir)
		}
	}
	return owner
}

// checkSamples checks the samples (file name → content) against the template's functions, whose
// folders are given by logical id.
func checkSamples(tpl *Template, folders map[string]string, samples map[string][]byte) []string {
	var problems []string
	fns := map[string]Function{}
	for _, fn := range tpl.Functions() {
		fns[fn.LogicalID] = fn
	}
	owned := map[string]int{}
	for _, file := range sortedKeys(samples) {
		id := sampleOwner(file, folders)
		fn, ok := fns[id]
		if !ok {
			problems = append(problems, fmt.Sprintf("events/%s: belongs to no function of the template; name a sample <folder>.json or <folder>-<what>.json after the folder its function is built from", file))
			continue
		}
		owned[id]++
		for _, p := range checkSample(tpl, fn, samples[file]) {
			problems = append(problems, fmt.Sprintf("events/%s (%s): %s", file, id, p))
		}
	}
	for _, fn := range tpl.Functions() {
		dir := folders[fn.LogicalID]
		switch {
		case dir == "":
			problems = append(problems, fmt.Sprintf("%s: no build-%s target names its folder, so no sample in events/ can belong to it", fn.LogicalID, fn.LogicalID))
		case owned[fn.LogicalID] == 0:
			problems = append(problems, fmt.Sprintf("%s: no sample event; add events/%s.json (or events/%s-<what>.json) with an event its source sends", fn.LogicalID, dir, dir))
		}
	}
	return problems
}

// checkSample checks that raw is an event one of fn's event sources sends.
func checkSample(tpl *Template, fn Function, raw []byte) []string {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil || top == nil {
		return []string{"not a JSON object"}
	}
	if top["detail-type"] != nil && len(fn.Schedules) > 0 {
		var ev events.EventBridgeEvent
		if err := strictDecode(raw, &ev); err != nil || ev.DetailType != "Scheduled Event" || ev.Source != "aws.events" {
			return []string{fmt.Sprintf("not an EventBridge Scheduled Event (%v)", err)}
		}
		return nil
	}
	if _, ok := top["Records"]; !ok {
		if len(fn.Routes) == 0 {
			return []string{"an HTTP API request, but the function has no HttpApi event"}
		}
		return checkHTTPSample(tpl, fn, raw)
	}
	var recs struct {
		Records []struct {
			EventSource string `json:"eventSource"`
		} `json:"Records"`
	}
	if err := json.Unmarshal(raw, &recs); err != nil || len(recs.Records) == 0 {
		return []string{"Records is not a non-empty list of records"}
	}
	source := recs.Records[0].EventSource
	for i, r := range recs.Records {
		if r.EventSource != source {
			return []string{fmt.Sprintf("Records[%d].eventSource is %q, Records[0] has %q", i, r.EventSource, source)}
		}
	}
	switch {
	case source == "aws:sqs" && len(fn.SQSSources) > 0:
		return checkSQSSample(tpl, fn, raw)
	case source == "aws:dynamodb" && len(fn.StreamSources) > 0:
		return checkStreamSample(tpl, fn, raw)
	}
	var reads []string
	if len(fn.SQSSources) > 0 {
		reads = append(reads, "aws:sqs")
	}
	if len(fn.StreamSources) > 0 {
		reads = append(reads, "aws:dynamodb")
	}
	if len(reads) == 0 {
		return []string{fmt.Sprintf("Records with eventSource %q, but the function reads no queue or stream", source)}
	}
	return []string{fmt.Sprintf("Records[].eventSource is %q, want %s", source, strings.Join(reads, " or "))}
}

// strictDecode decodes raw into v, refusing fields v does not have (a misspelt key would be lost
// silently by the Lambda runtime's decoder).
func strictDecode(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func checkHTTPSample(tpl *Template, fn Function, raw []byte) []string {
	var req events.APIGatewayV2HTTPRequest
	if err := strictDecode(raw, &req); err != nil {
		return []string{fmt.Sprintf("not an API Gateway HTTP API (payload 2.0) request: %v", err)}
	}
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	var route *Route
	var keys []string
	for i, r := range fn.Routes {
		key := routeKey(r)
		keys = append(keys, key)
		if key == req.RouteKey {
			route = &fn.Routes[i]
		}
	}
	if route == nil {
		return []string{fmt.Sprintf("routeKey %q is not a route of the function (%s)", req.RouteKey, strings.Join(keys, ", "))}
	}
	if want := cmp.Or(route.PayloadFormatVersion, "2.0"); req.Version != want {
		bad("version is %q, want %q", req.Version, want)
	}
	if req.RequestContext.RouteKey != req.RouteKey {
		bad("requestContext.routeKey is %q, want the routeKey %q", req.RequestContext.RouteKey, req.RouteKey)
	}
	method := req.RequestContext.HTTP.Method
	switch {
	case method == "":
		bad("requestContext.http.method is empty")
	case route.Method != "ANY" && method != route.Method:
		bad("requestContext.http.method is %q, want %s", method, route.Method)
	}
	if req.RequestContext.HTTP.Path != req.RawPath {
		bad("requestContext.http.path %q differs from rawPath %q", req.RequestContext.HTTP.Path, req.RawPath)
	}
	if route.Default {
		if len(req.PathParameters) > 0 {
			bad("the $default route has no path parameters, but pathParameters is %v", req.PathParameters)
		}
		for _, other := range tpl.Functions() {
			for _, r := range other.Routes {
				if _, ok := matchRoutePath(r.Path, req.RawPath); !r.Default && ok && (r.Method == "ANY" || r.Method == method) {
					bad("%s %s is served by %s.Events.%s, not by the $default route", method, req.RawPath, other.LogicalID, r.Event)
				}
			}
		}
	} else if params, ok := matchRoutePath(route.Path, req.RawPath); !ok {
		bad("rawPath %q does not match the route path %s", req.RawPath, route.Path)
	} else if !samePathParameters(params, req.PathParameters) {
		bad("pathParameters is %v, but rawPath %q gives %v", req.PathParameters, req.RawPath, params)
	}
	if q, err := url.ParseQuery(req.RawQueryString); err != nil {
		bad("rawQueryString %q does not parse: %v", req.RawQueryString, err)
	} else {
		want := map[string]string{}
		for k, vs := range q {
			want[k] = strings.Join(vs, ",") // API Gateway joins repeated parameters with commas
		}
		if len(want) != len(req.QueryStringParameters) || (len(want) > 0 && !reflect.DeepEqual(want, req.QueryStringParameters)) {
			bad("queryStringParameters is %v, but rawQueryString %q gives %v", req.QueryStringParameters, req.RawQueryString, want)
		}
	}
	for _, name := range sortedKeys(req.Headers) {
		if name != strings.ToLower(name) {
			bad("header %q is not lower-case, as HTTP APIs deliver them", name)
		}
	}
	body := []byte(req.Body)
	if req.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(req.Body)
		if err != nil {
			bad("isBase64Encoded, but the body is not base64: %v", err)
			return problems
		}
		body = b
	}
	if n, ok := req.Headers["content-length"]; ok && n != strconv.Itoa(len(body)) {
		bad("content-length is %s, but the body has %d bytes", n, len(body))
	}
	if strings.Contains(strings.ToLower(req.Headers["content-type"]), "json") && !json.Valid(body) {
		bad("content-type is %q, but the body is not valid JSON", req.Headers["content-type"])
	}
	return problems
}

// routeKey is the routeKey API Gateway sends for a route.
func routeKey(r Route) string {
	if r.Default {
		return "$default"
	}
	return r.Method + " " + r.Path
}

// matchRoutePath matches a request path against a route path with {name} and a last {name+}
// segment, and returns the path parameters.
func matchRoutePath(route, path string) (map[string]string, bool) {
	if !strings.HasPrefix(route, "/") || !strings.HasPrefix(path, "/") {
		return nil, false
	}
	rs, ps := strings.Split(route[1:], "/"), strings.Split(path[1:], "/")
	params := map[string]string{}
	for i, seg := range rs {
		if i >= len(ps) {
			return nil, false
		}
		name, isParam := strings.CutPrefix(seg, "{")
		name, _ = strings.CutSuffix(name, "}")
		switch {
		case !isParam:
			if seg != ps[i] {
				return nil, false
			}
		case strings.HasSuffix(name, "+"):
			rest := strings.Join(ps[i:], "/")
			if rest == "" {
				return nil, false
			}
			params[strings.TrimSuffix(name, "+")] = rest
			return params, true
		case ps[i] == "":
			return nil, false
		default:
			params[name] = ps[i]
		}
	}
	return params, len(rs) == len(ps)
}

// samePathParameters compares the parameters a path gives with the event's, whose values may be
// given decoded.
func samePathParameters(fromPath, got map[string]string) bool {
	if len(fromPath) != len(got) {
		return false
	}
	for k, v := range fromPath {
		dec, err := url.PathUnescape(v)
		if g, ok := got[k]; !ok || (g != v && (err != nil || g != dec)) {
			return false
		}
	}
	return true
}

func checkSQSSample(tpl *Template, fn Function, raw []byte) []string {
	var ev events.SQSEvent
	if err := strictDecode(raw, &ev); err != nil {
		return []string{fmt.Sprintf("not an SQS event: %v", err)}
	}
	fifo := map[bool]bool{} // the kinds of queue the function reads
	for _, s := range fn.SQSSources {
		for _, q := range tpl.Queues() {
			if q.LogicalID == s.Queue {
				fifo[q.Fifo] = true
			}
		}
	}
	var problems []string
	for i, m := range ev.Records {
		bad := func(format string, args ...any) {
			problems = append(problems, fmt.Sprintf("Records[%d]: ", i)+fmt.Sprintf(format, args...))
		}
		if m.MessageId == "" || m.ReceiptHandle == "" {
			bad("messageId and receiptHandle are required")
		}
		if !json.Valid([]byte(m.Body)) {
			bad("the body is not valid JSON (every Hookgate queue carries JSON)")
		}
		if sum := md5.Sum([]byte(m.Body)); m.Md5OfBody != "" && m.Md5OfBody != hex.EncodeToString(sum[:]) {
			bad("md5OfBody %s is not the MD5 of the body (%x)", m.Md5OfBody, sum)
		}
		arn := strings.Split(m.EventSourceARN, ":")
		if len(arn) != 6 || arn[0] != "arn" || arn[2] != "sqs" || arn[5] == "" {
			bad("eventSourceARN %q is not an SQS queue ARN", m.EventSourceARN)
			continue
		}
		isFifo := strings.HasSuffix(arn[5], ".fifo")
		switch {
		case !fifo[isFifo]:
			bad("eventSourceARN %q names a %s queue, but the function reads none", m.EventSourceARN, map[bool]string{true: "FIFO", false: "standard"}[isFifo])
		case isFifo && (m.Attributes["MessageGroupId"] == "" || m.Attributes["MessageDeduplicationId"] == ""):
			bad("a FIFO message needs attributes MessageGroupId and MessageDeduplicationId")
		case !isFifo && m.Attributes["MessageGroupId"] != "":
			bad("a standard queue's message has no MessageGroupId")
		}
	}
	return problems
}

func checkStreamSample(tpl *Template, fn Function, raw []byte) []string {
	var ev events.DynamoDBEvent
	if err := strictDecode(raw, &ev); err != nil {
		return []string{fmt.Sprintf("not a DynamoDB Streams event: %v", err)}
	}
	var generic struct {
		Records []any `json:"Records"`
	}
	if err := json.Unmarshal(raw, &generic); err != nil {
		return []string{err.Error()}
	}
	tables := map[string]Table{}
	for _, tb := range tpl.Tables() {
		tables[tb.LogicalID] = tb
	}
	var problems []string
	for i, r := range ev.Records {
		bad := func(format string, args ...any) {
			problems = append(problems, fmt.Sprintf("Records[%d]: ", i)+fmt.Sprintf(format, args...))
		}
		if !slices.Contains([]string{"INSERT", "MODIFY", "REMOVE"}, r.EventName) {
			bad("eventName is %q, want INSERT, MODIFY or REMOVE", r.EventName)
			continue
		}
		if !strings.HasPrefix(r.EventSourceArn, "arn:aws:dynamodb:") || !strings.Contains(r.EventSourceArn, ":table/") || !strings.Contains(r.EventSourceArn, "/stream/") {
			bad("eventSourceARN %q is not a DynamoDB stream ARN", r.EventSourceArn)
		}
		if r.Change.SequenceNumber == "" {
			bad("dynamodb.SequenceNumber is required (batch item failures name it)")
		}
		// The record must be one some stream source of the function sends: its table's view
		// type, key and filters.
		var why []string
		for _, s := range fn.StreamSources {
			tb := tables[s.Table]
			if reason := streamMismatch(tb, s, r, generic.Records[i]); reason != "" {
				why = append(why, fmt.Sprintf("%s.Events.%s: %s", fn.LogicalID, s.Event, reason))
				continue
			}
			why = nil
			break
		}
		if len(why) > 0 {
			bad("%s", strings.Join(why, "; "))
		}
	}
	return problems
}

// streamMismatch says why record r (rec, decoded generically) is not one the stream source s of
// table tb delivers, or "".
func streamMismatch(tb Table, s StreamSource, r events.DynamoDBEventRecord, rec any) string {
	c := r.Change
	if c.StreamViewType != tb.StreamViewType {
		return fmt.Sprintf("dynamodb.StreamViewType is %q, but table %s streams %s", c.StreamViewType, tb.LogicalID, tb.StreamViewType)
	}
	wantNew := r.EventName != "REMOVE" && (tb.StreamViewType == "NEW_IMAGE" || tb.StreamViewType == "NEW_AND_OLD_IMAGES")
	wantOld := r.EventName != "INSERT" && (tb.StreamViewType == "OLD_IMAGE" || tb.StreamViewType == "NEW_AND_OLD_IMAGES")
	if (len(c.NewImage) > 0) != wantNew || (len(c.OldImage) > 0) != wantOld {
		return fmt.Sprintf("a %s record of a %s stream has NewImage %v and OldImage %v, want %v and %v",
			r.EventName, tb.StreamViewType, len(c.NewImage) > 0, len(c.OldImage) > 0, wantNew, wantOld)
	}
	var keyNames []string
	for _, a := range []string{tb.Key.Hash, tb.Key.Range} {
		if a != "" {
			keyNames = append(keyNames, a)
		}
	}
	if got := sortedKeys(c.Keys); !slices.Equal(got, sortedKeys(setOf(keyNames))) {
		return fmt.Sprintf("dynamodb.Keys has %v, want the table's key %v", got, keyNames)
	}
	for _, img := range []map[string]events.DynamoDBAttributeValue{c.NewImage, c.OldImage} {
		for _, k := range keyNames {
			if v, ok := img[k]; len(img) > 0 && (!ok || !reflect.DeepEqual(v, c.Keys[k])) {
				return fmt.Sprintf("dynamodb.Keys.%s differs from the image's %s", k, k)
			}
		}
	}
	if len(s.FilterPatterns) == 0 {
		return ""
	}
	for _, p := range s.FilterPatterns {
		var pattern any
		if err := json.Unmarshal([]byte(p), &pattern); err != nil {
			return "" // reported by the template test
		}
		if match, ok := matchFilter(pattern, rec); match || !ok {
			return "" // a match, or a pattern form this test cannot evaluate
		}
	}
	return fmt.Sprintf("the record passes none of the FilterCriteria patterns %q, so Lambda would never deliver it", s.FilterPatterns)
}

func setOf(xs []string) map[string]bool {
	m := map[string]bool{}
	for _, x := range xs {
		m[x] = true
	}
	return m
}

// matchFilter reports whether a decoded JSON record matches a Lambda event filter pattern. It
// knows nested objects and lists of literal values (match one of them); ok is false for any other
// form (prefix, numeric, exists, anything-but, ...).
func matchFilter(pattern, record any) (match, ok bool) {
	switch p := pattern.(type) {
	case map[string]any:
		obj, _ := record.(map[string]any)
		match = true
		for k, sub := range p {
			m, ok := matchFilter(sub, obj[k])
			if !ok {
				return false, false
			}
			match = match && m
		}
		return match, true
	case []any:
		for _, lit := range p {
			switch lit.(type) {
			case map[string]any, []any:
				return false, false
			}
		}
		values := []any{record}
		if list, isList := record.([]any); isList {
			values = list // a list matches when one of its elements does
		}
		for _, v := range values {
			for _, lit := range p {
				if v != nil && reflect.DeepEqual(lit, v) {
					return true, true
				}
			}
		}
		return false, true
	}
	return false, false
}

// sampleBase has one function per kind of event source; sampleFolders names their folders.
const sampleBase = `
Resources:
  Api: {Type: AWS::Serverless::HttpApi}
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}, {AttributeName: sk, AttributeType: S}]
      KeySchema: [{AttributeName: pk, KeyType: HASH}, {AttributeName: sk, KeyType: RANGE}]
      StreamSpecification: {StreamViewType: NEW_IMAGE}
  Fifo: {Type: AWS::SQS::Queue, Properties: {FifoQueue: true}}
  Std: {Type: AWS::SQS::Queue}
  WebFunction:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Get: {Type: HttpApi, Properties: {ApiId: !Ref Api, Path: "/items/{id}", Method: GET}}
        Files: {Type: HttpApi, Properties: {ApiId: !Ref Api, Path: "/files/{proxy+}", Method: ANY}}
  WebAdminFunction:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        List: {Type: HttpApi, Properties: {ApiId: !Ref Api, Path: /admin/items, Method: GET}}
  DefaultFunction:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Default: {Type: HttpApi, Properties: {ApiId: !Ref Api}}
  WorkFunction:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Work: {Type: SQS, Properties: {Queue: !GetAtt Fifo.Arn}}
  SendFunction:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Send: {Type: SQS, Properties: {Queue: !GetAtt Std.Arn}}
  StreamFunction:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Log:
          Type: DynamoDB
          Properties:
            Stream: !GetAtt Table.StreamArn
            StartingPosition: LATEST
            FilterCriteria: {Filters: [{Pattern: '{"eventName":["INSERT"],"dynamodb":{"NewImage":{"kind":{"S":["event"]}}}}'}]}
`

var sampleFolders = map[string]string{
	"WebFunction": "web", "WebAdminFunction": "web-admin", "DefaultFunction": "default",
	"WorkFunction": "work", "SendFunction": "send", "StreamFunction": "stream",
}

func httpEvent(method, key, rawPath, query string, params map[string]string) map[string]any {
	ev := map[string]any{
		"version": "2.0", "routeKey": key, "rawPath": rawPath, "rawQueryString": query,
		"headers": map[string]any{"content-type": "application/json", "content-length": "8"},
		"requestContext": map[string]any{
			"routeKey": key, "http": map[string]any{"method": method, "path": rawPath},
		},
		"body": `{"a":1}` + " ", "isBase64Encoded": false,
	}
	if params != nil {
		ev["pathParameters"] = params
	}
	if q, _ := url.ParseQuery(query); len(q) > 0 {
		m := map[string]any{}
		for k, v := range q {
			m[k] = strings.Join(v, ",")
		}
		ev["queryStringParameters"] = m
	}
	return ev
}

func sqsEvent(queue string, fifo bool) map[string]any {
	body := `{"v":1}`
	attrs := map[string]any{"ApproximateReceiveCount": "1"}
	if fifo {
		queue += ".fifo"
		attrs["MessageGroupId"], attrs["MessageDeduplicationId"] = "g", "d"
	}
	sum := md5.Sum([]byte(body))
	return map[string]any{"Records": []any{map[string]any{
		"messageId": "m-1", "receiptHandle": "r-1", "body": body, "md5OfBody": hex.EncodeToString(sum[:]),
		"attributes": attrs, "messageAttributes": map[string]any{},
		"eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:" + queue, "awsRegion": "us-east-1",
	}}}
}

func streamEvent() map[string]any {
	s := func(v string) map[string]any { return map[string]any{"S": v} }
	return map[string]any{"Records": []any{map[string]any{
		"eventID": "e-1", "eventName": "INSERT", "eventVersion": "1.1", "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
		"dynamodb": map[string]any{
			"Keys":           map[string]any{"pk": s("WS#a#EV"), "sk": s("1")},
			"NewImage":       map[string]any{"pk": s("WS#a#EV"), "sk": s("1"), "kind": s("event")},
			"SequenceNumber": "100", "SizeBytes": 10, "StreamViewType": "NEW_IMAGE",
		},
		"eventSourceARN": "arn:aws:dynamodb:us-east-1:000000000000:table/Table/stream/2026-01-01T00:00:00.000",
	}}}
}

// goodSamples returns one matching sample per function of sampleBase, as decoded JSON.
func goodSamples() map[string]map[string]any {
	out := map[string]map[string]any{}
	for name, ev := range map[string]map[string]any{
		"web-get.json":          httpEvent("GET", "GET /items/{id}", "/items/42", "", map[string]string{"id": "42"}),
		"web-files.json":        httpEvent("PUT", "ANY /files/{proxy+}", "/files/a/b.txt", "x=1&x=2&y=", map[string]string{"proxy": "a/b.txt"}),
		"web-admin-list.json":   httpEvent("GET", "GET /admin/items", "/admin/items", "", nil),
		"default.json":          httpEvent("GET", "$default", "/nowhere", "", nil),
		"work-sqs.json":         sqsEvent("Fifo", true),
		"send.json":             sqsEvent("Std", false),
		"stream-log-event.json": streamEvent(),
	} {
		b, _ := json.Marshal(ev)
		var generic map[string]any
		_ = json.Unmarshal(b, &generic)
		out[name] = generic
	}
	return out
}

// edit sets (or, with value nil, deletes) the value at a dotted path; numbers index lists.
func edit(v any, path string, value any) {
	parts := strings.Split(path, ".")
	for _, p := range parts[:len(parts)-1] {
		if i, err := strconv.Atoi(p); err == nil {
			v = v.([]any)[i]
		} else {
			v = v.(map[string]any)[p]
		}
	}
	last := parts[len(parts)-1]
	if i, err := strconv.Atoi(last); err == nil {
		v.([]any)[i] = value
		return
	}
	if value == nil {
		delete(v.(map[string]any), last)
		return
	}
	v.(map[string]any)[last] = value
}

func TestCheckSamples(t *testing.T) {
	tpl := mustParse(t, sampleBase)
	encode := func(samples map[string]map[string]any) map[string][]byte {
		out := map[string][]byte{}
		for name, ev := range samples {
			b, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			out[name] = b
		}
		return out
	}
	if problems := checkSamples(tpl, sampleFolders, encode(goodSamples())); len(problems) > 0 {
		t.Fatalf("good samples: unexpected problems:\n%s", strings.Join(problems, "\n"))
	}

	type change struct {
		path  string
		value any // nil deletes
	}
	cases := []struct {
		name    string
		file    string // the sample edited
		changes []change
		raw     string // replaces the file's content when set
		want    string
	}{
		{"route of another function", "web-get.json", []change{{"routeKey", "GET /admin/items"}, {"requestContext.routeKey", "GET /admin/items"}}, "",
			`events/web-get.json (WebFunction): routeKey "GET /admin/items" is not a route of the function (ANY /files/{proxy+}, GET /items/{id})`},
		{"context route key", "web-get.json", []change{{"requestContext.routeKey", "GET /items"}}, "", `requestContext.routeKey is "GET /items", want the routeKey "GET /items/{id}"`},
		{"method", "web-get.json", []change{{"requestContext.http.method", "POST"}}, "", `requestContext.http.method is "POST", want GET`},
		{"http path", "web-get.json", []change{{"requestContext.http.path", "/items/43"}}, "", `requestContext.http.path "/items/43" differs from rawPath "/items/42"`},
		{"raw path off the route", "web-get.json", []change{{"rawPath", "/items/42/x"}, {"requestContext.http.path", "/items/42/x"}}, "", `rawPath "/items/42/x" does not match the route path /items/{id}`},
		{"empty path parameter", "web-get.json", []change{{"rawPath", "/items/"}, {"requestContext.http.path", "/items/"}}, "", `does not match the route path`},
		{"path parameter value", "web-get.json", []change{{"pathParameters.id", "43"}}, "", `pathParameters is map[id:43], but rawPath "/items/42" gives map[id:42]`},
		{"path parameter missing", "web-get.json", []change{{"pathParameters", nil}}, "", `pathParameters is map[], but rawPath`},
		{"extra path parameter", "web-admin-list.json", []change{{"pathParameters", map[string]any{"id": "1"}}}, "", `pathParameters is map[id:1], but rawPath "/admin/items" gives map[]`},
		{"greedy parameter", "web-files.json", []change{{"pathParameters.proxy", "a"}}, "", `but rawPath "/files/a/b.txt" gives map[proxy:a/b.txt]`},
		{"query parameters", "web-files.json", []change{{"queryStringParameters.x", "2"}}, "", `rawQueryString "x=1&x=2&y=" gives map[x:1,2 y:]`},
		{"query parameters missing", "web-files.json", []change{{"queryStringParameters", nil}}, "", `queryStringParameters is map[], but rawQueryString`},
		{"version", "web-get.json", []change{{"version", "1.0"}}, "", `version is "1.0", want "2.0"`},
		{"upper-case header", "web-get.json", []change{{"headers.Content-Type", "text/plain"}}, "", `header "Content-Type" is not lower-case`},
		{"content length", "web-get.json", []change{{"headers.content-length", "7"}}, "", `content-length is 7, but the body has 8 bytes`},
		{"json body", "web-get.json", []change{{"body", `{"a":1,}`}}, "", `content-type is "application/json", but the body is not valid JSON`},
		{"bad base64", "web-get.json", []change{{"isBase64Encoded", true}, {"body", "!!"}}, "", `isBase64Encoded, but the body is not base64`},
		{"misspelt key", "web-get.json", []change{{"pathParameter", map[string]any{"id": "42"}}}, "", `not an API Gateway HTTP API (payload 2.0) request: json: unknown field "pathParameter"`},
		{"default route path is served", "default.json", []change{{"rawPath", "/items/7"}, {"requestContext.http.path", "/items/7"}}, "", `GET /items/7 is served by WebFunction.Events.Get, not by the $default route`},
		{"default route any method", "default.json", []change{{"rawPath", "/files/x"}, {"requestContext.http.path", "/files/x"}}, "", `served by WebFunction.Events.Files`},
		{"http sample for a queue function", "work-sqs.json", nil, `{"version":"2.0","routeKey":"GET /x"}`, `events/work-sqs.json (WorkFunction): an HTTP API request, but the function has no HttpApi event`},
		{"not JSON", "web-get.json", nil, `{"version":`, `events/web-get.json (WebFunction): not a JSON object`},
		{"a list", "web-get.json", nil, `[]`, `not a JSON object`},

		{"sqs event source", "work-sqs.json", []change{{"Records.0.eventSource", "aws:kinesis"}}, "", `events/work-sqs.json (WorkFunction): Records[].eventSource is "aws:kinesis", want aws:sqs`},
		{"stream sample for a queue function", "work-sqs.json", nil, string(mustJSON(t, streamEvent())), `Records[].eventSource is "aws:dynamodb", want aws:sqs`},
		{"no records", "work-sqs.json", []change{{"Records", []any{}}}, "", `Records is not a non-empty list of records`},
		{"fifo without group", "work-sqs.json", []change{{"Records.0.attributes.MessageGroupId", nil}}, "", `a FIFO message needs attributes MessageGroupId and MessageDeduplicationId`},
		{"standard queue for a fifo reader", "work-sqs.json", []change{{"Records.0.eventSourceARN", "arn:aws:sqs:us-east-1:000000000000:Fifo"}}, "", `names a standard queue, but the function reads none`},
		{"fifo queue for a standard reader", "send.json", []change{{"Records.0.eventSourceARN", "arn:aws:sqs:us-east-1:000000000000:Std.fifo"}}, "", `names a FIFO queue, but the function reads none`},
		{"group on a standard queue", "send.json", []change{{"Records.0.attributes.MessageGroupId", "g"}}, "", `a standard queue's message has no MessageGroupId`},
		{"sqs arn", "send.json", []change{{"Records.0.eventSourceARN", "Std"}}, "", `eventSourceARN "Std" is not an SQS queue ARN`},
		{"md5", "send.json", []change{{"Records.0.body", `{"v":2}`}}, "", `is not the MD5 of the body`},
		{"sqs body", "send.json", []change{{"Records.0.body", `v=1`}, {"Records.0.md5OfBody", ""}}, "", `Records[0]: the body is not valid JSON`},

		{"stream event source", "stream-log-event.json", []change{{"Records.0.eventSource", "aws:sqs"}}, "", `Records[].eventSource is "aws:sqs", want aws:dynamodb`},
		{"stream event name", "stream-log-event.json", []change{{"Records.0.eventName", "CREATE"}}, "", `eventName is "CREATE", want INSERT, MODIFY or REMOVE`},
		{"stream arn", "stream-log-event.json", []change{{"Records.0.eventSourceARN", "arn:aws:dynamodb:us-east-1:000000000000:table/Table"}}, "", `is not a DynamoDB stream ARN`},
		{"view type", "stream-log-event.json", []change{{"Records.0.dynamodb.StreamViewType", "KEYS_ONLY"}}, "", `StreamFunction.Events.Log: dynamodb.StreamViewType is "KEYS_ONLY", but table Table streams NEW_IMAGE`},
		{"old image on a new-image stream", "stream-log-event.json", []change{{"Records.0.dynamodb.OldImage", map[string]any{"pk": map[string]any{"S": "x"}}}}, "", `a INSERT record of a NEW_IMAGE stream has NewImage true and OldImage true, want true and false`},
		{"keys", "stream-log-event.json", []change{{"Records.0.dynamodb.Keys.sk", nil}}, "", `dynamodb.Keys has [pk], want the table's key [pk sk]`},
		{"keys differ from the image", "stream-log-event.json", []change{{"Records.0.dynamodb.Keys.sk", map[string]any{"S": "2"}}}, "", `dynamodb.Keys.sk differs from the image's sk`},
		{"filtered out", "stream-log-event.json", []change{{"Records.0.dynamodb.NewImage.kind", map[string]any{"S": "thread"}}}, "", `the record passes none of the FilterCriteria patterns`},
		{"filtered out by event name", "stream-log-event.json", []change{{"Records.0.eventName", "MODIFY"}}, "", `the record passes none of the FilterCriteria patterns`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			samples := goodSamples()
			for _, ch := range c.changes {
				edit(samples[c.file], ch.path, ch.value)
			}
			files := encode(samples)
			if c.raw != "" {
				files[c.file] = []byte(c.raw)
			}
			problems := checkSamples(tpl, sampleFolders, files)
			if len(problems) != 1 || !strings.Contains(problems[0], c.want) {
				t.Errorf("got %d problems:\n%s\nwant one containing %q", len(problems), strings.Join(problems, "\n"), c.want)
			}
		})
	}

	t.Run("function without a sample", func(t *testing.T) {
		files := encode(goodSamples())
		delete(files, "send.json")
		problems := checkSamples(tpl, sampleFolders, files)
		if want := "SendFunction: no sample event; add events/send.json (or events/send-<what>.json)"; len(problems) != 1 || !strings.Contains(problems[0], want) {
			t.Errorf("got %q, want one problem containing %q", problems, want)
		}
	})

	t.Run("sample of no function", func(t *testing.T) {
		files := encode(goodSamples())
		files["sender.json"] = files["send.json"]
		problems := checkSamples(tpl, sampleFolders, files)
		if want := "events/sender.json: belongs to no function of the template"; len(problems) != 1 || !strings.Contains(problems[0], want) {
			t.Errorf("got %q, want one problem containing %q", problems, want)
		}
	})

	t.Run("mixed sources", func(t *testing.T) {
		ev := streamEvent()
		ev["Records"] = append(ev["Records"].([]any), sqsEvent("Std", false)["Records"].([]any)[0])
		files := encode(goodSamples())
		files["stream-log-event.json"] = mustJSON(t, ev)
		problems := checkSamples(tpl, sampleFolders, files)
		if want := `Records[1].eventSource is "aws:sqs", Records[0] has "aws:dynamodb"`; len(problems) != 1 || !strings.Contains(problems[0], want) {
			t.Errorf("got %q, want one problem containing %q", problems, want)
		}
	})

	t.Run("longest folder wins", func(t *testing.T) {
		for file, want := range map[string]string{
			"web.json": "WebFunction", "web-get.json": "WebFunction", "web-admin.json": "WebAdminFunction",
			"web-admin-list.json": "WebAdminFunction", "webhook.json": "", "send.json": "SendFunction", "sender.json": "",
		} {
			if got := sampleOwner(file, sampleFolders); got != want {
				t.Errorf("sampleOwner(%q) = %q, want %q", file, got, want)
			}
		}
	})

	t.Run("no folder", func(t *testing.T) {
		folders := maps.Clone(sampleFolders)
		folders["SendFunction"] = ""
		files := encode(goodSamples())
		delete(files, "send.json")
		problems := checkSamples(tpl, folders, files)
		if want := "SendFunction: no build-SendFunction target names its folder"; len(problems) != 1 || !strings.Contains(problems[0], want) {
			t.Errorf("got %q, want one problem containing %q", problems, want)
		}
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMatchFilter(t *testing.T) {
	rec := map[string]any{"eventName": "INSERT", "tags": []any{"a", "b"}, "n": 3.0, "dynamodb": map[string]any{"NewImage": map[string]any{"kind": map[string]any{"S": "event"}}}}
	cases := []struct {
		pattern   string
		match, ok bool
	}{
		{`{"eventName":["INSERT"]}`, true, true},
		{`{"eventName":["MODIFY","INSERT"]}`, true, true},
		{`{"eventName":["MODIFY"]}`, false, true},
		{`{"dynamodb":{"NewImage":{"kind":{"S":["event"]}}}}`, true, true},
		{`{"dynamodb":{"NewImage":{"kind":{"S":["thread"]}}}}`, false, true},
		{`{"dynamodb":{"OldImage":{"kind":{"S":["event"]}}}}`, false, true},
		{`{"tags":["b"]}`, true, true},
		{`{"n":[3]}`, true, true},
		{`{"missing":[null]}`, false, true},
		{`{"eventName":[{"prefix":"INS"}]}`, false, false},
		{`{"eventName":"INSERT"}`, false, false},
	}
	for _, c := range cases {
		var p any
		if err := json.Unmarshal([]byte(c.pattern), &p); err != nil {
			t.Fatal(err)
		}
		if match, ok := matchFilter(p, rec); match != c.match || ok != c.ok {
			t.Errorf("matchFilter(%s) = %v, %v; want %v, %v", c.pattern, match, ok, c.match, c.ok)
		}
	}
}
