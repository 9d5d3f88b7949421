package manage

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/hookgate/hookgate/local/emulator"
	"github.com/hookgate/hookgate/local/template"
	"github.com/hookgate/hookgate/shared/store"
	"github.com/hookgate/hookgate/shared/verify"
)

// newSourcesEnv is newEnv with the inbound routes added, as functions/management wires them.
func newSourcesEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t, false)
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := New(Config{DefaultWorkspace: "default", AdminKey: adminKey}, e.st, e.clk.now, log).WithSources(e.st)
	e.invoke = lambda.NewHandler(h.Handle).Invoke
	return e
}

// createdSource is the response to POST /v1/sources.
type createdSource struct {
	SourceView
	Secret *string `json:"secret"`
}

func (e *env) createSource(key string, body any) createdSource {
	e.t.Helper()
	var c createdSource
	e.must(201, call{route: "POST /v1/sources", key: key, body: body}).decode(e.t, &c)
	if c.Secret != nil {
		e.secrets = append(e.secrets, *c.Secret)
	}
	return c
}

// signed returns the headers a sender of scheme s would send with body, signed with secret at now
// (header is the configured header of shared_secret and hmac_sha256).
func signed(t *testing.T, s verify.Scheme, secret, header string, body []byte, now time.Time) map[string]string {
	t.Helper()
	mac := func(key []byte, parts ...string) []byte {
		m := hmac.New(sha256.New, key)
		for _, p := range parts {
			m.Write([]byte(p))
		}
		m.Write(body)
		return m.Sum(nil)
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	switch s {
	case verify.SharedSecret:
		return map[string]string{header: secret}
	case verify.HMACSHA256:
		return map[string]string{header: "sha256=" + hex.EncodeToString(mac([]byte(secret)))}
	case verify.GitHub:
		return map[string]string{"x-hub-signature-256": "sha256=" + hex.EncodeToString(mac([]byte(secret)))}
	case verify.StandardWebhooks:
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
		if err != nil {
			t.Fatalf("standard_webhooks secret is not whsec_<base64>: %v", err)
		}
		return map[string]string{
			"webhook-id": "msg_1", "webhook-timestamp": ts,
			"webhook-signature": "v1," + base64.StdEncoding.EncodeToString(mac(key, "msg_1.", ts, ".")),
		}
	case verify.Stripe:
		return map[string]string{"stripe-signature": "t=" + ts + ",v1=" + hex.EncodeToString(mac([]byte(secret), ts, "."))}
	case verify.Slack:
		return map[string]string{"x-slack-signature": "v0=" + hex.EncodeToString(mac([]byte(secret), "v0:", ts, ":")), "x-slack-request-timestamp": ts}
	case verify.Telegram:
		return map[string]string{"x-telegram-bot-api-secret-token": secret}
	case verify.Bearer:
		return map[string]string{"authorization": "Bearer " + secret}
	}
	return map[string]string{}
}

// verifies reports whether the stored source, as the doors would build its verifier at
// now, accepts a request signed with secret.
func (e *env) verifies(ws, name, secret string) bool {
	e.t.Helper()
	src, err := e.st.GetSource(context.Background(), ws, name)
	if err != nil {
		e.t.Fatalf("get source %s: %v", name, err)
	}
	now := e.clk.now()
	v, err := verify.New(verify.Scheme(src.Scheme), src.ActiveSecrets(now),
		verify.Options{Header: src.Header, Tolerance: time.Duration(src.ToleranceSeconds) * time.Second})
	if err != nil {
		e.t.Fatalf("the stored source %s makes no verifier: %v", name, err)
	}
	body := []byte(`{"type":"invoice.paid"}`)
	h := signed(e.t, verify.Scheme(src.Scheme), secret, src.Header, body, now)
	_, err = v.Verify(func(n string) string { return h[n] }, body, now)
	return err == nil
}

var hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)

func TestSourceGeneratedSecrets(t *testing.T) {
	t.Parallel()
	e := newSourcesEnv(t)
	key := e.key("ws")
	wrong := "wrong-secret-0123456789abcdef"
	for _, c := range []struct {
		scheme verify.Scheme
		header string
		shape  func(string) bool
	}{
		{verify.SharedSecret, "x-shared-token", hex64.MatchString},
		{verify.HMACSHA256, "x-signature", hex64.MatchString},
		{verify.StandardWebhooks, "", func(s string) bool {
			enc, ok := strings.CutPrefix(s, "whsec_")
			raw, err := base64.StdEncoding.DecodeString(enc)
			return ok && err == nil && len(raw) == 24
		}},
		{verify.GitHub, "", hex64.MatchString},
		{verify.Telegram, "", regexp.MustCompile(`^[A-Za-z0-9_-]{16,256}$`).MatchString},
		{verify.Bearer, "", hex64.MatchString},
	} {
		name := strings.ReplaceAll(string(c.scheme), "_", "-")
		body := map[string]any{"name": name, "scheme": c.scheme}
		if c.header != "" {
			body["header"] = c.header
		}
		src := e.createSource(key, body)
		if src.Secret == nil || !c.shape(*src.Secret) {
			t.Errorf("%s: generated secret has the wrong shape (%d characters)", c.scheme, len(deref(src.Secret)))
			continue
		}
		if src.Name != name || src.Scheme != string(c.scheme) || src.Header != c.header || src.WorkspaceID != "ws" || src.ActiveSecrets != 1 {
			t.Errorf("%s: created %+v", c.scheme, src.SourceView)
		}
		if want := map[bool]int{true: 300}[timestamped(c.scheme)]; src.ToleranceSeconds != want {
			t.Errorf("%s: tolerance_seconds %d, want %d", c.scheme, src.ToleranceSeconds, want)
		}
		if !e.verifies("ws", name, *src.Secret) {
			t.Errorf("%s: a request signed with the generated secret does not verify", c.scheme)
		}
		if c.scheme == verify.StandardWebhooks {
			wrong = "whsec_" + base64.StdEncoding.EncodeToString([]byte("another-key-0123456789ab"))
		}
		if e.verifies("ws", name, wrong) {
			t.Errorf("%s: a request signed with another secret verifies", c.scheme)
		}
	}
	// Stripe and Slack issue their own secrets: one made here could never match.
	for _, scheme := range []string{"stripe", "slack"} {
		e.must(400, call{route: "POST /v1/sources", key: key, body: map[string]any{"name": "gen-" + scheme, "scheme": scheme}})
	}
	// Two generated secrets differ.
	a := e.createSource(key, map[string]any{"name": "again-1", "scheme": "github"})
	b := e.createSource(key, map[string]any{"name": "again-2", "scheme": "github"})
	if *a.Secret == *b.Secret {
		t.Fatal("two generated secrets are equal")
	}

	// none has no secret, and accepts without one.
	r := e.must(201, call{route: "POST /v1/sources", key: key, body: `{"name":"open","scheme":"none"}`})
	if !strings.Contains(r.body, `"secret":null`) || !strings.Contains(r.body, `"active_secret_count":0`) {
		t.Fatalf("none: %s", r.body)
	}
	if !e.verifies("ws", "open", "") {
		t.Fatal("none: an unsigned request does not verify")
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func TestSourceRoundTrip(t *testing.T) {
	t.Parallel()
	e := newSourcesEnv(t)
	ctx := context.Background()
	key := e.key("ws")
	name := map[string]string{"name": "billing"}

	r := e.must(201, call{route: "POST /v1/sources", key: key, body: map[string]any{"name": "billing", "scheme": "hmac_sha256", "header": "x-billing-signature"}})
	var c createdSource
	r.decode(t, &c)
	first := deref(c.Secret)
	e.secrets = append(e.secrets, first)
	if !hex64.MatchString(first) || c.Name != "billing" || c.Scheme != "hmac_sha256" || c.Header != "x-billing-signature" || c.ActiveSecrets != 1 ||
		c.CreatedAt.IsZero() || !c.UpdatedAt.Equal(c.CreatedAt) || c.ToleranceSeconds != 0 {
		t.Fatalf("created %s", r.body)
	}
	if r.headers["location"] != "/v1/sources/billing" || r.headers["cache-control"] != "no-store" || r.headers["content-type"] != "application/json" {
		t.Fatalf("headers %v", r.headers)
	}
	stored, err := e.st.GetSource(ctx, "ws", "billing")
	if err != nil || len(stored.Secrets) != 1 || stored.Secrets[0].Value != first {
		t.Fatalf("stored %d secrets, %v", len(stored.Secrets), err)
	}

	// A given secret is kept as given; a timestamped scheme keeps its tolerance.
	given := "whsec_stripe-given-0123456789"
	e.secrets = append(e.secrets, given)
	s2 := e.createSource(key, map[string]any{"name": "stripe", "scheme": "stripe", "secret": given, "tolerance_seconds": 600})
	if deref(s2.Secret) != given || s2.ToleranceSeconds != 600 {
		t.Fatalf("given secret: %+v", s2.SourceView)
	}
	if !e.verifies("ws", "stripe", given) {
		t.Fatal("the given stripe secret does not verify")
	}

	// Get and list show the sources, never a secret.
	get := e.must(200, call{route: "GET /v1/sources/{name}", params: name, key: key})
	list := e.must(200, call{route: "GET /v1/sources", key: key})
	for _, r := range []response{get, list} {
		if strings.Contains(r.body, first) || strings.Contains(r.body, given) || strings.Contains(r.body, `"secret"`) {
			t.Fatalf("a secret in %s", r.body)
		}
	}
	var got SourceView
	get.decode(t, &got)
	if got.Name != "billing" || got.Scheme != "hmac_sha256" || got.Header != "x-billing-signature" || got.ActiveSecrets != 1 || !got.CreatedAt.Equal(c.CreatedAt) {
		t.Fatalf("get %s", get.body)
	}
	var page struct {
		Data []SourceView `json:"data"`
	}
	list.decode(t, &page)
	if len(page.Data) != 2 || page.Data[0].Name != "billing" || page.Data[1].Name != "stripe" || page.Data[1].ToleranceSeconds != 600 {
		t.Fatalf("list %s", list.body)
	}

	// Rotate with an overlap of an hour: both secrets verify until it ends.
	t0 := e.clk.add(time.Minute)
	r = e.must(200, call{route: "POST /v1/sources/{name}/rotate", params: name, key: key, body: `{"overlap_seconds":3600}`})
	var rot RotatedSource
	r.decode(t, &rot)
	e.secrets = append(e.secrets, rot.Secret)
	if !hex64.MatchString(rot.Secret) || rot.Secret == first || !rot.PreviousExpiresAt.Equal(t0.Add(time.Hour)) || rot.ActiveSecrets != 2 || rot.Name != "billing" {
		t.Fatalf("rotated %s, want a new secret, 2 active and previous_expires_at %s", r.body, t0.Add(time.Hour))
	}
	if !e.verifies("ws", "billing", rot.Secret) || !e.verifies("ws", "billing", first) {
		t.Fatal("during the overlap, the new and the previous secret must both verify")
	}
	e.clk.add(time.Hour + time.Second)
	if !e.verifies("ws", "billing", rot.Secret) || e.verifies("ws", "billing", first) {
		t.Fatal("after the overlap, only the new secret may verify")
	}
	e.must(200, call{route: "GET /v1/sources/{name}", params: name, key: key}).decode(t, &got)
	if got.ActiveSecrets != 1 {
		t.Fatalf("active_secret_count %d after the overlap", got.ActiveSecrets)
	}

	// Rotate with a given secret and the default overlap (a day), then retire: the previous
	// secret stops verifying at once.
	second := rot.Secret
	next := "given-rotation-secret-0123456789"
	e.secrets = append(e.secrets, next)
	t1 := e.clk.now()
	rot = RotatedSource{}
	e.must(200, call{route: "POST /v1/sources/{name}/rotate", params: name, key: key, body: map[string]any{"secret": next}}).decode(t, &rot)
	if rot.Secret != next || !rot.PreviousExpiresAt.Equal(t1.Add(24*time.Hour)) || rot.ActiveSecrets != 2 {
		t.Fatalf("rotated with a given secret: %+v", rot)
	}
	e.clk.add(time.Hour)
	if !e.verifies("ws", "billing", second) || !e.verifies("ws", "billing", next) {
		t.Fatal("an hour into the default overlap, both secrets must verify")
	}
	r = e.must(200, call{route: "POST /v1/sources/{name}/retire", params: name, key: key})
	got = SourceView{}
	r.decode(t, &got)
	if got.ActiveSecrets != 1 || got.Name != "billing" || strings.Contains(r.body, next) || strings.Contains(r.body, `"secret"`) {
		t.Fatalf("retired: %s", r.body)
	}
	if !e.verifies("ws", "billing", next) || e.verifies("ws", "billing", second) {
		t.Fatal("after retire, only the current secret may verify")
	}
	stored, _ = e.st.GetSource(ctx, "ws", "billing")
	if len(stored.Secrets) != 1 || stored.Secrets[0].Value != next {
		t.Fatalf("after retire, %d secrets are stored, want only the current one", len(stored.Secrets))
	}

	// Rotation validation: the overlap's range, the scheme's secret rules, a secret in use.
	for _, b := range []string{`{"overlap_seconds":-1}`, `{"overlap_seconds":2592001}`, `{"secret":"short"}`, `{"secret":"has white space 0123456789"}`, `{"overlap_seconds":"60"}`, `{"secrett":"x"}`} {
		r := e.must(400, call{route: "POST /v1/sources/{name}/rotate", params: name, key: key, body: b})
		if code, _ := r.errorCode(t); code != "invalid_request" {
			t.Errorf("rotate %s: %s", b, r.body)
		}
	}
	r = e.must(400, call{route: "POST /v1/sources/{name}/rotate", params: name, key: key, body: map[string]any{"secret": next}})
	if _, msg := r.errorCode(t); !strings.Contains(msg, "in use") {
		t.Fatalf("reused secret: %s", r.body)
	}
	// The source's scheme decides: a whsec_ secret too short for Standard Webhooks is fine for Stripe.
	e.must(400, call{route: "POST /v1/sources/{name}/rotate", params: map[string]string{"name": "stripe"}, key: key, body: `{"secret":"whsec_"}`})
	e.secrets = append(e.secrets, "whsec_c2hvcnQ=0123")
	e.must(200, call{route: "POST /v1/sources/{name}/rotate", params: map[string]string{"name": "stripe"}, key: key, body: `{"secret":"whsec_c2hvcnQ=0123"}`})
	stored, _ = e.st.GetSource(ctx, "ws", "billing")
	if len(stored.Secrets) != 1 || stored.Secrets[0].Value != next {
		t.Fatal("a refused rotation changed the secrets")
	}
	// The longest overlap is 30 days.
	e.must(200, call{route: "POST /v1/sources/{name}/rotate", params: name, key: key, body: `{"overlap_seconds":2592000}`}).decode(t, &rot)
	e.secrets = append(e.secrets, rot.Secret)
	if !rot.PreviousExpiresAt.Equal(e.clk.now().Add(30 * 24 * time.Hour)) {
		t.Fatalf("30 day overlap: previous_expires_at %s", rot.PreviousExpiresAt)
	}
	// none has nothing to rotate.
	e.must(201, call{route: "POST /v1/sources", key: key, body: `{"name":"open","scheme":"none"}`})
	e.must(400, call{route: "POST /v1/sources/{name}/rotate", params: map[string]string{"name": "open"}, key: key})

	// Delete: 204, then not found anywhere.
	r = e.must(204, call{route: "DELETE /v1/sources/{name}", params: name, key: key})
	if r.body != "" {
		t.Fatalf("204 with body %q", r.body)
	}
	for _, route := range []string{"GET /v1/sources/{name}", "DELETE /v1/sources/{name}", "POST /v1/sources/{name}/rotate", "POST /v1/sources/{name}/retire"} {
		r := e.must(404, call{route: route, params: name, key: key})
		if code, msg := r.errorCode(t); code != "not_found" || msg != "source not found" {
			t.Fatalf("%s after delete: %s", route, r.body)
		}
	}
	// A name no source can have is not found.
	e.must(404, call{route: "GET /v1/sources/{name}", params: map[string]string{"name": "Billing"}, key: key})
	page.Data = nil
	e.must(200, call{route: "GET /v1/sources", key: key}).decode(t, &page)
	if len(page.Data) != 2 || page.Data[0].Name != "open" || page.Data[1].Name != "stripe" {
		t.Fatalf("list after delete: %+v", page.Data)
	}
}

func TestSourceValidation(t *testing.T) {
	t.Parallel()
	e := newSourcesEnv(t)
	key := e.key("ws")
	long := strings.Repeat("s", 257)
	e.secrets = append(e.secrets, "sh0rtS3cret", "with space in the secret 0123", "telegram.dots.not.allowed", long, "whsec_c2hvcnQ=", "secret-for-none-0123456789")
	for _, c := range []struct {
		name string
		body string
		want string // part of the message
	}{
		{"no body", ``, "JSON object"},
		{"not JSON", `{"name":`, "not valid JSON"},
		{"unknown field", `{"name":"a","scheme":"none","extra":1}`, "unknown field"},
		{"wrong type", `{"name":"a","scheme":"stripe","tolerance_seconds":"60"}`, "tolerance_seconds must be an integer"},
		{"name missing", `{"scheme":"github"}`, "name must be"},
		{"name upper case", `{"name":"Stripe","scheme":"github"}`, "name must be"},
		{"name starts with -", `{"name":"-x","scheme":"github"}`, "name must be"},
		{"name with a dot", `{"name":"a.b","scheme":"github"}`, "name must be"},
		{"name too long", `{"name":"` + strings.Repeat("a", 65) + `","scheme":"github"}`, "name must be"},
		{"scheme missing", `{"name":"a"}`, "scheme is required"},
		{"scheme unknown", `{"name":"a","scheme":"hmac"}`, "scheme must be"},
		{"scheme upper case", `{"name":"a","scheme":"GITHUB"}`, "scheme must be"},
		{"secret too short", `{"name":"a","scheme":"hmac_sha256","secret":"sh0rtS3cret"}`, "secret must be"},
		{"provider secret empty", `{"name":"a","scheme":"github","secret":""}`, "secret must be"},
		{"secret empty", `{"name":"a","scheme":"bearer","secret":""}`, "secret must be"},
		{"secret with spaces", `{"name":"a","scheme":"shared_secret","secret":"with space in the secret 0123"}`, "secret must be"},
		{"secret with a control character", `{"name":"a","scheme":"slack","secret":"control\u0001character-0123456789"}`, "secret must be"},
		{"secret not ASCII", `{"name":"a","scheme":"bearer","secret":"ünïcödé-secret-0123456789"}`, "secret must be"},
		{"secret too long", `{"name":"a","scheme":"github","secret":"` + long + `"}`, "at most 256"},
		{"whsec without prefix", `{"name":"a","scheme":"standard_webhooks","secret":"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}`, "whsec_"},
		{"whsec not base64", `{"name":"a","scheme":"standard_webhooks","secret":"whsec_not base64!!"}`, "whsec_"},
		{"whsec too short", `{"name":"a","scheme":"standard_webhooks","secret":"whsec_c2hvcnQ="}`, "at least 16 bytes"},
		{"telegram charset", `{"name":"a","scheme":"telegram","secret":"telegram.dots.not.allowed"}`, "Telegram"},
		{"secret with none", `{"name":"a","scheme":"none","secret":"secret-for-none-0123456789"}`, "none takes no secret"},
		{"tolerance too large", `{"name":"a","scheme":"slack","tolerance_seconds":3601}`, "tolerance_seconds must be"},
		{"tolerance negative", `{"name":"a","scheme":"stripe","tolerance_seconds":-1}`, "tolerance_seconds must be"},
		{"tolerance without timestamps", `{"name":"a","scheme":"github","tolerance_seconds":60}`, "only for the schemes standard_webhooks"},
		{"header upper case", `{"name":"a","scheme":"shared_secret","header":"X-Token"}`, "header must be"},
		{"header with a space", `{"name":"a","scheme":"hmac_sha256","header":"x token"}`, "header must be"},
		{"header with a colon", `{"name":"a","scheme":"hmac_sha256","header":"x:token"}`, "header must be"},
		{"header too long", `{"name":"a","scheme":"shared_secret","header":"` + strings.Repeat("x", 129) + `"}`, "header must be"},
		{"header for github", `{"name":"a","scheme":"github","header":"x-token"}`, "only for the schemes shared_secret and hmac_sha256"},
	} {
		r := e.do(call{route: "POST /v1/sources", key: key, body: c.body})
		if r.status != 400 || r.headers["content-type"] != "application/json" {
			t.Errorf("%s: %d %s", c.name, r.status, r.body)
			continue
		}
		if code, msg := r.errorCode(t); code != "invalid_request" || !strings.Contains(msg, c.want) {
			t.Errorf("%s: %s, want a message with %q", c.name, r.body, c.want)
		}
	}
	var page struct {
		Data []SourceView `json:"data"`
	}
	e.must(200, call{route: "GET /v1/sources", key: key}).decode(t, &page)
	if len(page.Data) != 0 {
		t.Fatalf("refused requests stored %d sources", len(page.Data))
	}

	// The edges of each rule are accepted.
	e.secrets = append(e.secrets, "abcdefghijklmnop", "Tele_gram-token_0123", "my hook", "ünïcödé secret", "whsec_"+base64.StdEncoding.EncodeToString([]byte("0123456789abcdef")))
	for i, b := range []string{
		`{"name":"a","scheme":"slack","tolerance_seconds":1,"secret":"slack-signing-secret-0123"}`,
		`{"name":"b","scheme":"standard_webhooks","tolerance_seconds":3600}`,
		`{"name":"c","scheme":"stripe","tolerance_seconds":0,"secret":"whsec_stripe-signing-secret"}`,
		`{"name":"d","scheme":"github","tolerance_seconds":0}`,
		`{"name":"e","scheme":"bearer","secret":"abcdefghijklmnop"}`,
		`{"name":"f","scheme":"telegram","secret":"Tele_gram-token_0123"}`,
		`{"name":"g","scheme":"standard_webhooks","secret":"whsec_` + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef")) + `"}`,
		`{"name":"h","scheme":"shared_secret","header":"x-hook_token.v2"}`,
		`{"name":"` + strings.Repeat("z", 64) + `","scheme":"github"}`,
		`{"name":"0_-","scheme":"none"}`,
		`{"name":"i","scheme":"github","secret":"my hook"}`,       // as GitHub takes it: short, with a space
		`{"name":"j","scheme":"slack","secret":"ünïcödé secret"}`, // a provider's secret is stored as given
	} {
		r := e.do(call{route: "POST /v1/sources", key: key, body: b})
		if r.status != 201 {
			t.Errorf("edge %d %s: %d %s", i, b, r.status, r.body)
			continue
		}
		var c createdSource
		r.decode(t, &c)
		if c.Secret != nil {
			e.secrets = append(e.secrets, *c.Secret)
		}
	}
}

func TestSourceConflictAndScope(t *testing.T) {
	t.Parallel()
	e := newSourcesEnv(t)
	ctx := context.Background()
	keyA, keyB := e.key("ws-a"), e.key("ws-b")
	a := e.createSource(keyA, map[string]any{"name": "orders", "scheme": "github"})
	name := map[string]string{"name": "orders"}

	// A name is unique within a workspace, not across workspaces.
	r := e.must(409, call{route: "POST /v1/sources", key: keyA, body: map[string]any{"name": "orders", "scheme": "bearer"}})
	if code, _ := r.errorCode(t); code != "conflict" {
		t.Fatalf("duplicate: %s", r.body)
	}

	// Another workspace's key finds nothing of A's and changes nothing.
	for _, c := range []call{
		{route: "GET /v1/sources/{name}", params: name, key: keyB},
		{route: "DELETE /v1/sources/{name}", params: name, key: keyB},
		{route: "POST /v1/sources/{name}/rotate", params: name, key: keyB, body: `{"overlap_seconds":0}`},
		{route: "POST /v1/sources/{name}/retire", params: name, key: keyB},
	} {
		r := e.must(404, c)
		if code, _ := r.errorCode(t); code != "not_found" {
			t.Errorf("%s by another workspace: %s", c.route, r.body)
		}
	}
	// Naming A's workspace does not help a key of B.
	e.must(403, call{route: "GET /v1/sources/{name}", params: name, key: keyB, query: map[string]string{"workspace_id": "ws-a"}})
	e.must(403, call{route: "POST /v1/sources", key: keyB, body: map[string]any{"name": "x", "scheme": "github", "workspace_id": "ws-a"}})
	var page struct {
		Data []SourceView `json:"data"`
	}
	e.must(200, call{route: "GET /v1/sources", key: keyB}).decode(t, &page)
	if len(page.Data) != 0 {
		t.Fatalf("B lists %d sources", len(page.Data))
	}
	// B may use the same name for its own source.
	b := e.createSource(keyB, map[string]any{"name": "orders", "scheme": "github"})
	if *b.Secret == *a.Secret || b.WorkspaceID != "ws-b" {
		t.Fatalf("B's source: %+v", b.SourceView)
	}
	stored, err := e.st.GetSource(ctx, "ws-a", "orders")
	if err != nil || len(stored.Secrets) != 1 || stored.Secrets[0].Value != *a.Secret {
		t.Fatalf("A's source changed: %v", err)
	}

	// The admin key acts on the default workspace, or on the one it names.
	e.must(404, call{route: "GET /v1/sources/{name}", params: name, key: adminKey})
	var got SourceView
	e.must(200, call{route: "GET /v1/sources/{name}", params: name, key: adminKey, query: map[string]string{"workspace_id": "ws-a"}}).decode(t, &got)
	if got.WorkspaceID != "ws-a" || got.Scheme != "github" {
		t.Fatalf("admin get: %+v", got)
	}
	c := e.createSource(adminKey, map[string]any{"name": "made-by-admin", "scheme": "bearer", "workspace_id": "ws-b"})
	if c.WorkspaceID != "ws-b" {
		t.Fatalf("admin create in ws-b: %+v", c.SourceView)
	}
	if _, err := e.st.GetSource(ctx, "ws-b", "made-by-admin"); err != nil {
		t.Fatalf("admin source not in ws-b: %v", err)
	}
	e.must(400, call{route: "GET /v1/sources", key: adminKey, query: map[string]string{"workspace_id": "bad/ws"}})
}

// TestIngressAuthorization: with no key, a wrong key or a revoked key, every inbound route is 401
// and nothing changes.
func TestIngressAuthorization(t *testing.T) {
	t.Parallel()
	e := newSourcesEnv(t)
	ctx := context.Background()
	key := e.key("ws")
	src := e.createSource(key, map[string]any{"name": "orders", "scheme": "github"})
	routes := `{"routes":[{"pattern":"*","agent":"triage"}]}`
	e.must(200, call{route: "PUT /v1/routes", key: key, body: routes})

	revoked, plain, err := e.st.CreateAPIKey(ctx, "ws", "to revoke")
	if err != nil {
		t.Fatal(err)
	}
	e.secrets = append(e.secrets, plain)
	if err := e.st.RevokeAPIKey(ctx, "ws", revoked.ID); err != nil {
		t.Fatal(err)
	}
	name := map[string]string{"name": "orders"}
	calls := []call{
		{route: "POST /v1/sources", body: `{"name":"new","scheme":"github"}`},
		{route: "GET /v1/sources"},
		{route: "GET /v1/sources/{name}", params: name},
		{route: "DELETE /v1/sources/{name}", params: name},
		{route: "POST /v1/sources/{name}/rotate", params: name, body: `{"overlap_seconds":0}`},
		{route: "POST /v1/sources/{name}/retire", params: name},
		{route: "GET /v1/routes"},
		{route: "PUT /v1/routes", body: `{"routes":[]}`},
		{route: "GET /v1/bindings"},
	}
	for _, cred := range []struct {
		what      string
		key, auth string
	}{{"no key", "", ""}, {"wrong key", "hg_not-a-key", ""}, {"revoked key", plain, ""}, {"revoked bearer", "", "Bearer " + plain}} {
		for _, c := range calls {
			c.key, c.auth = cred.key, cred.auth
			r := e.do(c)
			if code, _ := r.errorCode(t); r.status != 401 || code != "unauthorized" {
				t.Errorf("%s, %s: %d %s", cred.what, c.route, r.status, r.body)
			}
		}
	}
	srcs, err := e.st.ListSources(ctx, "ws")
	if err != nil || len(srcs) != 1 || len(srcs[0].Secrets) != 1 || srcs[0].Secrets[0].Value != *src.Secret {
		t.Fatalf("unauthorized calls changed the sources: %d, %v", len(srcs), err)
	}
	rr, err := e.st.RoleRoutes(ctx, "ws")
	if err != nil || !slices.Equal(rr, []store.RoleRoute{{Pattern: "*", Agent: "triage"}}) {
		t.Fatalf("unauthorized calls changed the routes: %v, %v", rr, err)
	}
	// Authorization: Bearer works for a good key.
	e.must(200, call{route: "GET /v1/sources", auth: "Bearer " + key})
}

func TestRoleRoutes(t *testing.T) {
	t.Parallel()
	e := newSourcesEnv(t)
	key, other := e.key("ws"), e.key("ws-other")

	r := e.must(200, call{route: "GET /v1/routes", key: key})
	if r.body != `{"routes":[]}` {
		t.Fatalf("no routes: %s", r.body)
	}
	want := []store.RoleRoute{
		{Pattern: "webhook.stripe.invoice_paid", Agent: "billing"},
		{Pattern: "webhook.stripe.*", Agent: "payments"},
		{Pattern: "webhook.git-hub.*", Agent: "dev-ops_2"},
		{Pattern: "webhook.*", Agent: "inbox"},
		{Pattern: "*", Agent: "triage"},
	}
	var got RoleRoutesView
	e.must(200, call{route: "PUT /v1/routes", key: key, body: map[string]any{"routes": want}}).decode(t, &got)
	if !slices.Equal(got.Routes, want) {
		t.Fatalf("PUT returned %v", got.Routes)
	}
	got = RoleRoutesView{}
	e.must(200, call{route: "GET /v1/routes", key: key}).decode(t, &got)
	if !slices.Equal(got.Routes, want) {
		t.Fatalf("GET returned %v", got.Routes)
	}
	// Another workspace has its own (no) routes.
	if r := e.must(200, call{route: "GET /v1/routes", key: other}); r.body != `{"routes":[]}` {
		t.Fatalf("another workspace sees %s", r.body)
	}

	many := func(n int) string {
		rs := make([]store.RoleRoute, n)
		for i := range rs {
			rs[i] = store.RoleRoute{Pattern: fmt.Sprintf("webhook.s%d.*", i), Agent: "a"}
		}
		b, err := json.Marshal(map[string]any{"routes": rs})
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, c := range []struct {
		name, body, want string
	}{
		{"no body", ``, "JSON object"},
		{"routes missing", `{}`, "routes is required"},
		{"routes null", `{"routes":null}`, "routes is required"},
		{"routes not an array", `{"routes":{}}`, "routes must be"},
		{"unknown field", `{"routes":[{"pattern":"*","agent":"a","priority":1}]}`, "unknown field"},
		{"too many", many(101), "at most 100"},
		{"pattern empty", `{"routes":[{"pattern":"","agent":"a"}]}`, "routes[0].pattern"},
		{"pattern not a role", `{"routes":[{"pattern":"stripe","agent":"a"}]}`, "routes[0].pattern"},
		{"pattern of another family", `{"routes":[{"pattern":"run.*","agent":"a"}]}`, "routes[0].pattern"},
		{"pattern upper case", `{"routes":[{"pattern":"webhook.Stripe.*","agent":"a"}]}`, "routes[0].pattern"},
		{"pattern with a dotted slug", `{"routes":[{"pattern":"webhook.stripe.invoice.paid","agent":"a"}]}`, "routes[0].pattern"},
		{"pattern without a type", `{"routes":[{"pattern":"webhook.stripe","agent":"a"}]}`, "routes[0].pattern"},
		{"pattern glob inside", `{"routes":[{"pattern":"webhook.stripe.inv*","agent":"a"}]}`, "routes[0].pattern"},
		{"pattern twice", `{"routes":[{"pattern":"*","agent":"a"},{"pattern":"*","agent":"b"}]}`, "routes[1].pattern \"*\" is listed twice"},
		{"agent empty", `{"routes":[{"pattern":"*","agent":""}]}`, "routes[0].agent"},
		{"agent missing", `{"routes":[{"pattern":"*"}]}`, "routes[0].agent"},
		{"agent upper case", `{"routes":[{"pattern":"*","agent":"Billing"}]}`, "routes[0].agent"},
		{"agent starts with _", `{"routes":[{"pattern":"*","agent":"_a"}]}`, "routes[0].agent"},
		{"agent too long", `{"routes":[{"pattern":"*","agent":"` + strings.Repeat("a", 65) + `"}]}`, "routes[0].agent"},
		{"second entry bad", `{"routes":[{"pattern":"*","agent":"a"},{"pattern":"webhook.x.*","agent":"a b"}]}`, "routes[1].agent"},
	} {
		r := e.do(call{route: "PUT /v1/routes", key: key, body: c.body})
		if r.status != 400 {
			t.Errorf("%s: %d %s", c.name, r.status, r.body)
			continue
		}
		if code, msg := r.errorCode(t); code != "invalid_request" || !strings.Contains(msg, c.want) {
			t.Errorf("%s: %s, want a message with %q", c.name, r.body, c.want)
		}
	}
	got = RoleRoutesView{}
	e.must(200, call{route: "GET /v1/routes", key: key}).decode(t, &got)
	if !slices.Equal(got.Routes, want) {
		t.Fatalf("refused PUTs changed the routes: %v", got.Routes)
	}

	// 100 routes and 64-character agents are accepted; [] removes every route.
	e.must(200, call{route: "PUT /v1/routes", key: key, body: many(100)})
	e.must(200, call{route: "PUT /v1/routes", key: key, body: `{"routes":[{"pattern":"*","agent":"` + strings.Repeat("a", 64) + `"}]}`})
	if r := e.must(200, call{route: "PUT /v1/routes", key: key, body: `{"routes":[]}`}); r.body != `{"routes":[]}` {
		t.Fatalf("PUT []: %s", r.body)
	}
	if r := e.must(200, call{route: "GET /v1/routes", key: key}); r.body != `{"routes":[]}` {
		t.Fatalf("after PUT []: %s", r.body)
	}
}

func TestBindings(t *testing.T) {
	t.Parallel()
	e := newSourcesEnv(t)
	key, other := e.key("ws"), e.key("ws-other")
	r := e.must(200, call{route: "GET /v1/bindings", key: key})
	if r.body != `{"bindings":[]}` {
		t.Fatalf("no bindings: %s", r.body)
	}
	at := e.clk.now().Add(-time.Minute)
	for _, b := range []store.BindingStatus{
		{WorkspaceID: "ws", Channel: "slack", BindingID: "T1", Status: "connected", ReportedAt: at},
		{WorkspaceID: "ws", Channel: "slack", BindingID: "T1", Status: "error", Detail: "token revoked", ReportedAt: at.Add(time.Second)},
		{WorkspaceID: "ws", Channel: "telegram", BindingID: "bot1", Status: "connected", ReportedAt: at},
	} {
		if _, err := e.st.PutBindingStatus(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	var got struct {
		Bindings []store.BindingStatus `json:"bindings"`
	}
	e.must(200, call{route: "GET /v1/bindings", key: key}).decode(t, &got)
	if len(got.Bindings) != 2 || got.Bindings[0].Channel != "slack" || got.Bindings[0].Status != "error" || got.Bindings[0].Detail != "token revoked" ||
		got.Bindings[1].Channel != "telegram" || got.Bindings[1].BindingID != "bot1" {
		t.Fatalf("bindings %+v", got.Bindings)
	}
	if r := e.must(200, call{route: "GET /v1/bindings", key: other}); r.body != `{"bindings":[]}` {
		t.Fatalf("another workspace sees %s", r.body)
	}
}

// TestRouteKeysMatchTemplate: the routes of the handler as functions/management wires it are the
// HttpApi events of ManagementFunction in template.yaml, no more and no fewer.
func TestRouteKeysMatchTemplate(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root, err := emulator.FindRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := template.Load(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	declared := tpl.RouteKeys("ManagementFunction")
	h := New(Config{AdminKey: adminKey}, nil, time.Now, slog.New(slog.NewJSONHandler(io.Discard, nil))).WithDeliveries(nil, nil).WithSources(nil).WithAgents(nil).WithFanoutReplay(nil)
	if got := h.RouteKeys(); !slices.Equal(got, declared) {
		t.Fatalf("handler routes %v\ntemplate routes %v", got, declared)
	}
}
