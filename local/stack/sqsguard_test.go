package stack

import (
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
