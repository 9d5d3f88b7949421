package streamesm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"

	"github.com/hookgate/hookgate/shared/awscfg"
)

// NewClient builds a DynamoDB Streams client from c, pointed at its DynamoDB endpoint override
// (DynamoDB Local serves both APIs on one port). Against a local endpoint the client repairs
// DynamoDB Local's empty maps (see localStreams). It lives here, not in awscfg, so that the
// functions' bootstraps do not carry a client only local mode uses.
func NewClient(c awscfg.Config) *dynamodbstreams.Client {
	return dynamodbstreams.NewFromConfig(c.AWS, func(o *dynamodbstreams.Options) {
		if c.DynamoEndpoint != "" {
			o.BaseEndpoint = aws.String(c.DynamoEndpoint)
			o.HTTPClient = localStreams{next: o.HTTPClient}
		}
	})
}

// localStreams repairs DynamoDB Local's GetRecords responses: an empty map attribute comes as {}
// instead of {"M":{}}, which the SDK decodes into a wrong value (nil, or a copy of the attribute
// before it). Every other response passes untouched.
type localStreams struct {
	next dynamodbstreams.HTTPClient
}

func (l localStreams) Do(req *http.Request) (*http.Response, error) {
	resp, err := l.next.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK || !strings.HasSuffix(req.Header.Get("X-Amz-Target"), ".GetRecords") {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read GetRecords response: %w", err)
	}
	if fixed, ok := fixEmptyMaps(body); ok {
		body = fixed
		resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
		resp.ContentLength = int64(len(body))
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// fixEmptyMaps rewrites the untagged {} attribute values in the records' Keys, NewImage and
// OldImage (at any depth of M and L) as {"M":{}}. It reports false when there is nothing to fix.
func fixEmptyMaps(body []byte) ([]byte, bool) {
	if !bytes.Contains(body, []byte("{}")) {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // keeps ApproximateCreationDateTime and SizeBytes as written
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return nil, false
	}
	records, _ := doc["Records"].([]any)
	changed := false
	for _, r := range records {
		rec, _ := r.(map[string]any)
		change, _ := rec["dynamodb"].(map[string]any)
		for _, image := range []string{"Keys", "NewImage", "OldImage"} {
			attrs, _ := change[image].(map[string]any)
			for name, v := range attrs {
				if fixed, ok := fixEmptyMap(v); ok {
					attrs[name], changed = fixed, true
				}
			}
		}
	}
	if !changed {
		return nil, false
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil, false
	}
	return buf.Bytes(), true
}

func fixEmptyMap(v any) (any, bool) {
	av, ok := v.(map[string]any)
	if !ok {
		return v, false
	}
	if len(av) == 0 {
		return map[string]any{"M": map[string]any{}}, true
	}
	changed := false
	if m, ok := av["M"].(map[string]any); ok {
		for k, x := range m {
			if fixed, ok := fixEmptyMap(x); ok {
				m[k], changed = fixed, true
			}
		}
	}
	if l, ok := av["L"].([]any); ok {
		for i, x := range l {
			if fixed, ok := fixEmptyMap(x); ok {
				l[i], changed = fixed, true
			}
		}
	}
	return av, changed
}
