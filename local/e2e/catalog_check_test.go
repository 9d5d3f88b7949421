package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/hookgate/hookgate/shared/awscfg"
	"github.com/hookgate/hookgate/shared/catalog"
)

// The event catalog (shared/catalog) cannot drift from what the code records: every event body a
// receiver of these tests gets (newReceiver) and every event in the log of each stack a test
// started (checked when that test ends) is held to its type's schema. A type the catalog lacks,
// or data its schema refuses, fails the test that saw it.

var (
	catalogOnce    sync.Once
	catalogSchemas map[string]*jsonschema.Schema
	catalogErr     error
)

// envelopeSchema is the JSON Schema of every event's envelope (fanout.Envelope).
const envelopeSchema = `{"type": "object", "required": ["id", "type", "created_at", "workspace_id", "data"],
	"properties": {"id": {"type": "string", "minLength": 1}, "type": {"type": "string"},
		"created_at": {"type": "string", "format": "date-time"}, "workspace_id": {"type": "string", "minLength": 1}, "data": {}},
	"additionalProperties": false}`

func schemas() (map[string]*jsonschema.Schema, error) {
	catalogOnce.Do(func() {
		c := jsonschema.NewCompiler()
		c.DefaultDraft(jsonschema.Draft2020)
		c.AssertFormat()
		catalogSchemas = map[string]*jsonschema.Schema{}
		add := func(name string, raw []byte) {
			doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
			if err == nil {
				err = c.AddResource("catalog:///"+name, doc)
			}
			var s *jsonschema.Schema
			if err == nil {
				s, err = c.Compile("catalog:///" + name)
			}
			if err != nil && catalogErr == nil {
				catalogErr = fmt.Errorf("schema of %s: %w", name, err)
			}
			catalogSchemas[name] = s
		}
		add("@envelope", []byte(envelopeSchema))
		for _, et := range catalog.All() {
			add(et.Name, et.Schema)
		}
	})
	return catalogSchemas, catalogErr
}

// checkEvent validates one event, as JSON (an envelope), against the catalog.
func checkEvent(body []byte) error {
	ss, err := schemas()
	if err != nil {
		return err
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	if err := ss["@envelope"].Validate(v); err != nil {
		return fmt.Errorf("envelope: %v", err)
	}
	env := v.(map[string]any)
	typ := env["type"].(string)
	et, ok := catalog.Lookup(typ)
	if !ok {
		return fmt.Errorf("event type %q is not in the catalog (shared/catalog)", typ)
	}
	if err := ss[et.Name].Validate(env["data"]); err != nil {
		return fmt.Errorf("%s (%v): data does not match the catalog's schema: %v", typ, env["id"], err)
	}
	return nil
}

// checkStackEvents validates every event in the stack's table against the catalog: the event log
// of every workspace the test's stack served.
func checkStackEvents(t *testing.T, e *env) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg, err := awscfg.Load(ctx, func(k string) string {
		return map[string]string{awscfg.EnvDynamoEndpoint: e.stack.DynamoEndpoint, awscfg.EnvSQSEndpoint: e.stack.SQSEndpoint}[k]
	})
	if err != nil {
		t.Errorf("catalog check: %v", err)
		return
	}
	in := &dynamodb.ScanInput{
		TableName:                 aws.String(e.stack.Tables["Table"]),
		FilterExpression:          aws.String("kind = :event"),
		ExpressionAttributeValues: map[string]dbtypes.AttributeValue{":event": &dbtypes.AttributeValueMemberS{Value: "event"}},
	}
	bad := 0
	for p := dynamodb.NewScanPaginator(cfg.DynamoDB(), in); p.HasMorePages(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Logf("catalog check: scan of the event log stopped: %v", err) // the emulator of an own stack may be gone
			return
		}
		for _, it := range page.Items {
			body, err := logEnvelope(it)
			if err == nil {
				err = checkEvent(body)
			}
			if err != nil && bad < 10 {
				bad++
				t.Errorf("event log of the stack: %v", err)
			}
		}
	}
}

// logEnvelope rebuilds an event's envelope from its log item, as the fan-out does.
func logEnvelope(it map[string]dbtypes.AttributeValue) ([]byte, error) {
	get := func(name string) string {
		if v, ok := it[name].(*dbtypes.AttributeValueMemberS); ok {
			return v.Value
		}
		return ""
	}
	pk := get("pk")
	ws := pk
	if len(ws) > 6 {
		ws = ws[3 : len(ws)-3] // WS#<ws>#EV
	}
	return json.Marshal(map[string]any{
		"id": get("event_id"), "type": get("type"), "created_at": get("created_at"), "workspace_id": ws,
		"data": json.RawMessage(get("data")),
	})
}
