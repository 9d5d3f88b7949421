package stack

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The guard refuses what SQS refuses and passes everything else to the emulator unchanged.
func TestSQSGuard(t *testing.T) {
	var passed []string
	emu := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		passed = append(passed, string(b))
		_, _ = io.WriteString(w, `{}`)
	}))
	defer emu.Close()
	g, err := startSQSGuard(emu.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	for _, c := range []struct {
		target, body string
		refused      bool
	}{
		{"AmazonSQS.SendMessage", `{"QueueUrl":"q","MessageBody":"ok \uFFFD \t\n"}`, false},
		{"AmazonSQS.SendMessage", `{"QueueUrl":"q","MessageBody":"escaped \\uffff is fine"}`, false},
		{"AmazonSQS.SendMessage", `{"QueueUrl":"q","MessageBody":"\uffff"}`, true},
		{"AmazonSQS.SendMessage", `{"QueueUrl":"q","MessageBody":"\u0001"}`, true},
		{"AmazonSQS.SendMessage", "{\"QueueUrl\":\"q\",\"MessageBody\":\"\uFFFE\"}", true},
		{"AmazonSQS.SendMessageBatch", `{"QueueUrl":"q","Entries":[{"Id":"1","MessageBody":"a"},{"Id":"2","MessageBody":"\ufffe"}]}`, true},
		{"AmazonSQS.ReceiveMessage", `{"QueueUrl":"q","MessageBody":"\uffff"}`, false},
	} {
		req, _ := http.NewRequest(http.MethodPost, g.URL+"/", strings.NewReader(c.body))
		req.Header.Set("X-Amz-Target", c.target)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got := resp.StatusCode == 400 && strings.Contains(string(b), "InvalidMessageContents") && resp.Header.Get("X-Amzn-Query-Error") == "InvalidMessageContents;Sender"
		if got != c.refused {
			t.Errorf("%s %s: %d %s", c.target, c.body, resp.StatusCode, b)
		}
		if !c.refused && passed[len(passed)-1] != c.body {
			t.Errorf("%s passed as %q", c.body, passed[len(passed)-1])
		}
	}
}

// The guard refuses what SQS refuses in message attributes, and messages and batches over SQS's
// 1 MiB; a message at the limit passes.
func TestSQSGuardAttributesAndSize(t *testing.T) {
	emu := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, `{}`) }))
	defer emu.Close()
	g, err := startSQSGuard(emu.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	attr := func(name, value string) string {
		return fmt.Sprintf(`{"QueueUrl":"q","MessageBody":"b","MessageAttributes":{%q:{"DataType":"String","StringValue":%q}}}`, name, value)
	}
	big := func(n int) string { return strings.Repeat("x", n) }
	for _, c := range []struct {
		name, target, body, code string
	}{
		{"plain attribute", "AmazonSQS.SendMessage", attr("trace_id", "ok"), ""},
		{"attribute value character", "AmazonSQS.SendMessage", attr("a", "\uffff"), "InvalidParameterValue"},
		{"attribute name character", "AmazonSQS.SendMessage", attr("a b", "v"), "InvalidParameterValue"},
		{"reserved attribute name", "AmazonSQS.SendMessage", attr("AWS.x", "v"), "InvalidParameterValue"},
		{"attribute name with two periods", "AmazonSQS.SendMessage", attr("a..b", "v"), "InvalidParameterValue"},
		{"1 MiB body", "AmazonSQS.SendMessage", fmt.Sprintf(`{"QueueUrl":"q","MessageBody":%q}`, big(1<<20)), ""},
		{"body over 1 MiB", "AmazonSQS.SendMessage", fmt.Sprintf(`{"QueueUrl":"q","MessageBody":%q}`, big(1<<20+1)), "InvalidParameterValue"},
		{"body and attribute over 1 MiB", "AmazonSQS.SendMessage", fmt.Sprintf(`{"QueueUrl":"q","MessageBody":%q,"MessageAttributes":{"a":{"DataType":"String","StringValue":"12345"}}}`, big(1<<20-10)), "InvalidParameterValue"},
		{"batch over 1 MiB", "AmazonSQS.SendMessageBatch", fmt.Sprintf(`{"QueueUrl":"q","Entries":[{"Id":"1","MessageBody":%q},{"Id":"2","MessageBody":%q}]}`, big(600<<10), big(600<<10)), "BatchRequestTooLong"},
	} {
		req, _ := http.NewRequest(http.MethodPost, g.URL+"/", strings.NewReader(c.body))
		req.Header.Set("X-Amz-Target", c.target)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if c.code == "" && resp.StatusCode != 200 || c.code != "" && (resp.StatusCode != 400 || !strings.Contains(string(b), c.code)) {
			t.Errorf("%s: %d %.200s, want %q", c.name, resp.StatusCode, b, c.code)
		}
	}
}

// A message keeps the trace header it was sent with (the X-Amzn-Trace-Id the SDK sends from a
// Lambda function, percent-encoded, or an explicit AWSTraceHeader) and is received with it as its
// AWSTraceHeader system attribute, as SQS does.
func TestSQSGuardKeepsTheTraceHeader(t *testing.T) {
	emu := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Header.Get("X-Amz-Target") {
		case "AmazonSQS.SendMessage":
			_, _ = io.WriteString(w, `{"MessageId":"m1","MD5OfMessageBody":"x"}`)
		case "AmazonSQS.SendMessageBatch":
			_, _ = io.WriteString(w, `{"Successful":[{"Id":"a","MessageId":"m2"},{"Id":"b","MessageId":"m3"}],"Failed":[]}`)
		case "AmazonSQS.ReceiveMessage":
			_, _ = io.WriteString(w, `{"Messages":[{"MessageId":"m1","Body":"b","Attributes":{"SentTimestamp":"1"}},{"MessageId":"m2","Body":"b"},{"MessageId":"m3","Body":"b"},{"MessageId":"m4","Body":"b"}]}`)
		}
	}))
	defer emu.Close()
	g, err := startSQSGuard(emu.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	post := func(target, body, trace string) string {
		req, _ := http.NewRequest(http.MethodPost, g.URL+"/", strings.NewReader(body))
		req.Header.Set("X-Amz-Target", target)
		if trace != "" {
			req.Header.Set("X-Amzn-Trace-Id", trace)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	post("AmazonSQS.SendMessage", `{"QueueUrl":"q","MessageBody":"b"}`, "Root=1-a-b;Lineage=aa:1%7Cbb:2")
	post("AmazonSQS.SendMessageBatch", `{"QueueUrl":"q","Entries":[{"Id":"a","MessageBody":"b"},{"Id":"b","MessageBody":"b","MessageSystemAttributes":{"AWSTraceHeader":{"DataType":"String","StringValue":"Root=own"}}}]}`, "Root=batch")
	var out struct {
		Messages []struct {
			MessageId  string
			Attributes map[string]string
		}
	}
	if err := json.Unmarshal([]byte(post("AmazonSQS.ReceiveMessage", `{"QueueUrl":"q"}`, "")), &out); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"m1": "Root=1-a-b;Lineage=aa:1|bb:2", "m2": "Root=batch", "m3": "Root=own", "m4": ""}
	for _, m := range out.Messages {
		if got := m.Attributes["AWSTraceHeader"]; got != want[m.MessageId] {
			t.Errorf("%s: AWSTraceHeader %q, want %q", m.MessageId, got, want[m.MessageId])
		}
	}
	if len(out.Messages) != 4 || out.Messages[0].Attributes["SentTimestamp"] != "1" {
		t.Fatalf("messages %+v", out.Messages)
	}
}
