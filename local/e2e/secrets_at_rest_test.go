package e2e_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	sttypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/hookgate/hookgate/local/streamesm"
	"github.com/hookgate/hookgate/shared/awscfg"
)

// Every per-tenant secret the management API takes (a subscription's signing secrets, a source's
// secrets, a telegram source's bot token, a webhook agent's signing secret, an openai agent's API
// key, an adapter's secrets) is stored sealed: neither the table's items nor the stream's
// NEW_IMAGEs hold one in clear, as text, base64 or hex. The sealed secrets still work: the source
// verifies a signed webhook, the adapter opens with its current and previous secret, and its run
// reaches the stored webhook agent with a request signed by the agent's secret.
func TestSecretsAreSealedAtRest(t *testing.T) {
	e := sharedStack(t)
	ws := uniqueWS("seal")
	key := apiKeyFor(t, e, ws)
	h := map[string]string{"x-api-key": key, "content-type": "application/json"}
	var secrets []string

	// A subscription, its secret rotated (the rewrite path seals too).
	r := do(t, http.MethodPost, e.stack.URL+"/v1/webhooks", h, `{"url":"http://127.0.0.1:9/hook","events":["message.received"]}`)
	if r.status != 201 {
		t.Fatalf("create subscription: %d %s", r.status, r.raw)
	}
	subID, _ := r.body["id"].(string)
	secrets = append(secrets, r.body["secret"].(string))
	r = do(t, http.MethodPost, e.stack.URL+"/v1/webhooks/"+subID+"/rotate-secret", h, `{"overlap_seconds":3600}`)
	if r.status != 200 {
		t.Fatalf("rotate subscription secret: %d %s", r.status, r.raw)
	}
	secrets = append(secrets, r.body["secret"].(string))

	// A GitHub source with a secret of the caller's, then rotated.
	ghSecret := fmt.Sprintf("gh-secret-%d", time.Now().UnixNano())
	r = do(t, http.MethodPost, e.stack.URL+"/v1/sources", h, `{"name":"github","scheme":"github","secret":"`+ghSecret+`"}`)
	if r.status != 201 {
		t.Fatalf("create source: %d %s", r.status, r.raw)
	}
	secrets = append(secrets, ghSecret)
	ghNext := ghSecret + "-next"
	r = do(t, http.MethodPost, e.stack.URL+"/v1/sources/github/rotate", h, `{"secret":"`+ghNext+`","overlap_seconds":3600}`)
	if r.status != 200 {
		t.Fatalf("rotate source secret: %d %s", r.status, r.raw)
	}
	secrets = append(secrets, ghNext)

	// A telegram source with its own bot token.
	tgSecret := fmt.Sprintf("tgsecret%d", time.Now().UnixNano())
	botToken := fmt.Sprintf("12345:%s", strings.Repeat("Ab9_", 8)+fmt.Sprint(time.Now().UnixNano()))
	r = do(t, http.MethodPost, e.stack.URL+"/v1/sources", h, `{"name":"telegram","scheme":"telegram","secret":"`+tgSecret+`","bot_token":"`+botToken+`"}`)
	if r.status != 201 {
		t.Fatalf("create telegram source: %d %s", r.status, r.raw)
	}
	secrets = append(secrets, tgSecret, botToken)

	// A webhook agent with a secret of the caller's (its server answers only correctly signed
	// calls), an openai agent with an API key, and an adapter on the webhook agent with a secret of
	// the caller's, rotated to another with an overlap.
	n := time.Now().UnixNano()
	agentSecret := "whsec_" + base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("sealed-agent-secret-%032d", n)))
	var signed, unsigned atomic.Int32
	agentSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if !verifyStandard(agentSecret, req.Header.Get("webhook-id"), req.Header.Get("webhook-timestamp"), req.Header.Get("webhook-signature"), body) {
			unsigned.Add(1)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		signed.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"type":"speak","text":"the sealed agent answered"}`)
	}))
	defer agentSrv.Close()
	r = do(t, http.MethodPost, e.stack.URL+"/v1/agents", h, fmt.Sprintf(`{"name":"signed","type":"webhook","url":%q,"secret":%q}`, agentSrv.URL, agentSecret))
	if r.status != 201 {
		t.Fatalf("create webhook agent: %d %s", r.status, r.raw)
	}
	apiKey := fmt.Sprintf("sk-sealed-api-key-%d", n)
	r = do(t, http.MethodPost, e.stack.URL+"/v1/agents", h, fmt.Sprintf(`{"name":"gpt","type":"openai","base_url":"http://127.0.0.1:9/v1","model":"m1","api_key":%q}`, apiKey))
	if r.status != 201 {
		t.Fatalf("create openai agent: %d %s", r.status, r.raw)
	}
	adapterName := fmt.Sprintf("seal-%d", n%1e9)
	adapterSecret := fmt.Sprintf("sealed-adapter-secret-%d", n)
	r = do(t, http.MethodPost, e.stack.URL+"/v1/adapters", h, fmt.Sprintf(`{"name":%q,"agent":"signed","secret":%q}`, adapterName, adapterSecret))
	if r.status != 201 {
		t.Fatalf("create adapter: %d %s", r.status, r.raw)
	}
	adapterNext := adapterSecret + "-next"
	r = do(t, http.MethodPost, e.stack.URL+"/v1/adapters/"+adapterName+"/rotate", h, fmt.Sprintf(`{"secret":%q,"overlap_seconds":3600}`, adapterNext))
	if r.status != 200 {
		t.Fatalf("rotate adapter secret: %d %s", r.status, r.raw)
	}
	secrets = append(secrets, agentSecret, apiKey, adapterSecret, adapterNext)
	for _, sec := range []string{adapterNext, adapterSecret} {
		var ar reply
		waitFor(t, "the adapter to open with a stored secret", 30*time.Second, func() bool {
			ar = do(t, http.MethodPost, e.stack.URL+"/webhook/"+adapterName, map[string]string{"authorization": "Bearer " + sec, "content-type": "application/json"},
				`{"text":"sealed hello","sync":true,"timeoutMs":20000}`)
			return ar.status != 401
		})
		if ar.status != 200 || !strings.Contains(ar.raw, "the sealed agent answered") {
			t.Fatalf("a run through the adapter and the stored webhook agent: %d %s", ar.status, ar.raw)
		}
	}
	if signed.Load() == 0 || unsigned.Load() != 0 {
		t.Fatalf("the stored webhook agent got %d correctly signed and %d badly signed calls", signed.Load(), unsigned.Load())
	}

	// The sealed secrets still verify: both the new and the previous GitHub secret.
	for i, sec := range []string{ghNext, ghSecret} {
		body := fmt.Sprintf(`{"action":"opened","issue":{"number":%d}}`, i+1)
		r = postWebhook(t, e, ws, "source=github", signers["github"](sec, fmt.Sprintf("d-%d", time.Now().UnixNano()), time.Now(), body), body)
		if r.status != 202 {
			t.Fatalf("webhook signed with a stored secret: %d %s", r.status, r.raw)
		}
	}

	cfg, err := awscfg.Load(context.Background(), func(k string) string {
		return map[string]string{awscfg.EnvDynamoEndpoint: e.stack.DynamoEndpoint, awscfg.EnvSQSEndpoint: e.stack.SQSEndpoint}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	prefix := "WS#" + ws + "#"

	// The table's items.
	db := cfg.DynamoDB()
	var items []map[string]dbtypes.AttributeValue
	in := &dynamodb.ScanInput{TableName: aws.String(e.stack.Tables["Table"]), ConsistentRead: aws.Bool(true)}
	for p := dynamodb.NewScanPaginator(db, in); p.HasMorePages(); {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, page.Items...)
	}
	var mine int
	for _, it := range items {
		pk, _ := it["pk"].(*dbtypes.AttributeValueMemberS)
		if pk != nil && isSecretItem(pk.Value, prefix, adapterName) {
			mine++
		}
		if leak := findSecret(dump(it), secrets); leak != "" {
			t.Errorf("table item %v holds a secret in clear (%s)", it["pk"], leak)
		}
	}
	if mine != 6 {
		t.Fatalf("found %d subscription, source, agent and adapter items of %s, want 6", mine, ws)
	}

	// The stream's NEW_IMAGEs.
	streams := streamesm.NewClient(cfg)
	images := streamImages(t, streams, e.stack.Streams["Table"], func(pk string) bool { return isSecretItem(pk, prefix, adapterName) }, secrets)
	if images < 6 {
		t.Fatalf("read %d stream images of %s's subscriptions, sources, agents and adapters, want at least 6", images, ws)
	}
}

// isSecretItem reports whether pk is the key of an item of the test's workspace (prefix) that
// holds secrets: a subscription, a source, an agent, or the test's adapter.
func isSecretItem(pk, prefix, adapter string) bool {
	if pk == "ADP#"+adapter {
		return true
	}
	return strings.HasPrefix(pk, prefix) && (strings.HasSuffix(pk, "#SUBS") || strings.HasSuffix(pk, "#SRC") || strings.HasSuffix(pk, "#AGT"))
}

// streamImages reads every record of the stream from its start, fails the test when a NEW_IMAGE
// holds one of the secrets, and returns how many images of the items mine selects (by pk) it read.
func streamImages(t *testing.T, streams *dynamodbstreams.Client, arn string, mine func(pk string) bool, secrets []string) int {
	t.Helper()
	ctx := context.Background()
	desc, err := streams.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for _, sh := range desc.StreamDescription.Shards {
		it, err := streams.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{
			StreamArn: aws.String(arn), ShardId: sh.ShardId, ShardIteratorType: sttypes.ShardIteratorTypeTrimHorizon,
		})
		if err != nil {
			t.Fatal(err)
		}
		for iter := it.ShardIterator; iter != nil; {
			out, err := streams.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				t.Fatal(err)
			}
			for _, rec := range out.Records {
				img := rec.Dynamodb.NewImage
				if pk, ok := img["pk"].(*sttypes.AttributeValueMemberS); ok && mine(pk.Value) {
					n++
				}
				raw, err := json.Marshal(img)
				if err != nil {
					t.Fatal(err)
				}
				if leak := findSecret(streamDump(img, raw), secrets); leak != "" {
					t.Errorf("stream image %s holds a secret in clear (%s)", rec.Dynamodb.Keys["pk"], leak)
				}
			}
			if len(out.Records) == 0 {
				break
			}
			iter = out.NextShardIterator
		}
	}
	return n
}

// dump is every string and byte value of an item, and the item as JSON.
func dump(item map[string]dbtypes.AttributeValue) []byte {
	var b bytes.Buffer
	var walk func(v dbtypes.AttributeValue)
	walk = func(v dbtypes.AttributeValue) {
		switch v := v.(type) {
		case *dbtypes.AttributeValueMemberS:
			b.WriteString(v.Value + "\n")
		case *dbtypes.AttributeValueMemberB:
			b.Write(v.Value)
			b.WriteString("\n")
		case *dbtypes.AttributeValueMemberSS:
			b.WriteString(strings.Join(v.Value, "\n") + "\n")
		case *dbtypes.AttributeValueMemberBS:
			for _, x := range v.Value {
				b.Write(x)
				b.WriteString("\n")
			}
		case *dbtypes.AttributeValueMemberL:
			for _, x := range v.Value {
				walk(x)
			}
		case *dbtypes.AttributeValueMemberM:
			for k, x := range v.Value {
				b.WriteString(k + "\n")
				walk(x)
			}
		}
	}
	for k, v := range item {
		b.WriteString(k + "\n")
		walk(v)
	}
	raw, _ := json.Marshal(item)
	b.Write(raw)
	return b.Bytes()
}

// streamDump is dump for a stream image.
func streamDump(img map[string]sttypes.AttributeValue, raw []byte) []byte {
	var b bytes.Buffer
	var walk func(v sttypes.AttributeValue)
	walk = func(v sttypes.AttributeValue) {
		switch v := v.(type) {
		case *sttypes.AttributeValueMemberS:
			b.WriteString(v.Value + "\n")
		case *sttypes.AttributeValueMemberB:
			b.Write(v.Value)
			b.WriteString("\n")
		case *sttypes.AttributeValueMemberL:
			for _, x := range v.Value {
				walk(x)
			}
		case *sttypes.AttributeValueMemberM:
			for k, x := range v.Value {
				b.WriteString(k + "\n")
				walk(x)
			}
		}
	}
	for _, v := range img {
		walk(v)
	}
	b.Write(raw)
	return b.Bytes()
}

// findSecret names the first secret found in data as text, base64 or hex, or returns "".
func findSecret(data []byte, secrets []string) string {
	for i, sec := range secrets {
		forms := map[string]string{
			"text": sec, "base64": base64.StdEncoding.EncodeToString([]byte(sec)),
			"base64url": base64.RawURLEncoding.EncodeToString([]byte(sec)), "hex": hex.EncodeToString([]byte(sec)),
		}
		for form, v := range forms {
			if bytes.Contains(data, []byte(v)) {
				return fmt.Sprintf("secret %d as %s", i, form)
			}
		}
	}
	return ""
}

// A telegram source's own bot token is stored sealed and still sends the agent's reply: the
// delivery function opens it and calls the Bot API with it.
func TestSealedBotTokenSendsTheReply(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var paths []string
	bot := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		fmt.Fprint(w, `{"ok":true,"result":{"message_id":1}}`)
	}))
	defer bot.Close()
	e, err := startStack(t, "tgseal", 0, map[string]string{"TelegramApiUrl": bot.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.stack.Close()
	ws := uniqueWS("tgseal")
	key := apiKeyFor(t, e, ws)
	token := fmt.Sprintf("777:%s%d", strings.Repeat("Zz9-", 6), time.Now().UnixNano())
	const secret = "tg-sealed-secret-token"
	r := do(t, http.MethodPost, e.stack.URL+"/v1/sources", map[string]string{"x-api-key": key},
		`{"name":"telegram","scheme":"telegram","secret":"`+secret+`","bot_token":"`+token+`"}`)
	if r.status != 201 {
		t.Fatalf("create the source: %d %s", r.status, r.raw)
	}
	chat := time.Now().UnixNano() % 1e9
	update := fmt.Sprintf(`{"update_id":%d,"message":{"message_id":1,"date":1700000000,"chat":{"id":%d,"type":"private"},"text":"sealed hi"}}`, chat, chat)
	r = do(t, http.MethodPost, e.stack.URL+"/v1/inbound/telegram?workspace_id="+ws+"&source=telegram",
		map[string]string{"content-type": "application/json", "x-telegram-bot-api-secret-token": secret}, update)
	if r.status != 202 {
		t.Fatalf("update: %d %s", r.status, r.raw)
	}
	waitFor(t, "sendMessage with the source's bot token", 60*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(paths, "/bot"+token+"/sendMessage")
	})
}
