package manage

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/fields"
	"github.com/hookgate/hookgate/shared/store"
	"github.com/hookgate/hookgate/shared/verify"
)

// SourcesStore is the part of the store the inbound routes use: sources, role routes and the
// status of channel bindings.
type SourcesStore interface {
	CreateSource(ctx context.Context, src store.Source) (store.Source, error)
	GetSource(ctx context.Context, ws, name string) (store.Source, error)
	ListSources(ctx context.Context, ws string) ([]store.Source, error)
	RotateSourceSecret(ctx context.Context, ws, name, newSecret string, overlap time.Duration) (store.Source, error)
	RetireSourceSecrets(ctx context.Context, ws, name string) (store.Source, error)
	DeleteSource(ctx context.Context, ws, name string) error

	PutRoleRoutes(ctx context.Context, ws string, routes []store.RoleRoute) error
	RoleRoutes(ctx context.Context, ws string) ([]store.RoleRoute, error)
	ListBindings(ctx context.Context, ws string) ([]store.BindingStatus, error)
}

// Limits of sources.
const (
	MaxSourceNameLen           = 64
	MaxSourceSecretLen         = 256 // characters, every scheme
	MinSourceSecretLen         = 16  // characters, Hookgate's own schemes (shared_secret, hmac_sha256, bearer)
	MinWhsecBytes              = 16  // decoded key of a standard_webhooks secret
	MaxSourceHeaderLen         = 128
	MaxToleranceSeconds        = 3600
	DefaultToleranceSeconds    = int(verify.DefaultTolerance / time.Second)
	DefaultSourceRotateOverlap = 24 * time.Hour
	MaxSourceRotateOverlap     = 30 * 24 * time.Hour
)

// botTokenPattern is the shape of a Telegram bot token: the bot's id, a colon, the secret part.
var botTokenPattern = regexp.MustCompile(`^[0-9]{1,20}:[A-Za-z0-9_-]{20,200}$`)

// WithSources adds the inbound routes: sources with their verification secrets, role routes, and
// the status of channel bindings.
func (h *Handler) WithSources(st SourcesStore) *Handler {
	in := &sourceRoutes{h: h, store: st}
	h.routes["POST /v1/sources"] = in.createSource
	h.routes["GET /v1/sources"] = in.listSources
	h.routes["GET /v1/sources/{name}"] = in.getSource
	h.routes["DELETE /v1/sources/{name}"] = in.deleteSource
	h.routes["POST /v1/sources/{name}/rotate"] = in.rotateSource
	h.routes["POST /v1/sources/{name}/retire"] = in.retireSource
	h.routes["GET /v1/routes"] = in.getRoutes
	h.routes["PUT /v1/routes"] = in.putRoutes
	h.routes["GET /v1/bindings"] = in.listBindings
	return h
}

type sourceRoutes struct {
	h     *Handler
	store SourcesStore
}

// SourceView is a source as the API shows it. It never holds a secret: only how many verify right
// now (two or more during a rotation's overlap).
type SourceView struct {
	WorkspaceID string `json:"workspace_id"`
	Name        string `json:"name"`
	Scheme      string `json:"scheme"`
	// Header is the header of shared_secret and hmac_sha256; empty means the verifier's default.
	Header string `json:"header,omitempty"`
	// ToleranceSeconds is the effective tolerance of the schemes that sign a timestamp.
	ToleranceSeconds int `json:"tolerance_seconds,omitempty"`
	ActiveSecrets    int `json:"active_secret_count"`
	// HasBotToken says whether a telegram source holds its own bot token (never shown).
	HasBotToken bool      `json:"has_bot_token,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// CreatedSource is the response to creating a source: the only time, with rotation, that its
// secret is shown. Secret is null for the scheme none.
type CreatedSource struct {
	SourceView
	Secret *string `json:"secret"`
}

// RotatedSource is the response to a rotation: the new secret, shown only here, and when the
// previous secrets stop verifying at the latest.
type RotatedSource struct {
	SourceView
	Secret            string    `json:"secret"`
	PreviousExpiresAt time.Time `json:"previous_expires_at"`
}

func (in *sourceRoutes) sourceView(src store.Source) SourceView {
	v := SourceView{
		WorkspaceID: src.WorkspaceID, Name: src.Name, Scheme: src.Scheme, Header: src.Header,
		ActiveSecrets: src.ActiveSecretCount(in.h.now()), HasBotToken: src.HasBotToken(), CreatedAt: src.CreatedAt, UpdatedAt: src.UpdatedAt,
	}
	if timestamped(verify.Scheme(src.Scheme)) {
		v.ToleranceSeconds = src.ToleranceSeconds
		if v.ToleranceSeconds == 0 {
			v.ToleranceSeconds = DefaultToleranceSeconds
		}
	}
	return v
}

// POST /v1/sources {name, scheme, secret?, header?, tolerance_seconds?, bot_token?, workspace_id?}
// → 201 with the secret, shown only here. Without a secret, one suited to the scheme is generated.
// A telegram source may hold its bot's token: replies to its chats are sent with it (the default
// workspace's fall back to the stack's TelegramBotToken; other workspaces' get none without it).
func (in *sourceRoutes) createSource(ctx context.Context, c Caller, req *events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	var b struct {
		Name             string  `json:"name"`
		Scheme           string  `json:"scheme"`
		Secret           *string `json:"secret"`
		Header           string  `json:"header"`
		ToleranceSeconds int     `json:"tolerance_seconds"`
		BotToken         string  `json:"bot_token"`
		WorkspaceID      string  `json:"workspace_id"`
	}
	if err := body(req, &b, false); err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	if err := checkSourceName(b.Name); err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	scheme := verify.Scheme(b.Scheme)
	if err := checkScheme(scheme); err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	if err := checkSourceHeader(scheme, b.Header); err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	if err := checkTolerance(scheme, b.ToleranceSeconds); err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	if b.BotToken != "" && (scheme != verify.Telegram || !botTokenPattern.MatchString(b.BotToken)) {
		return events.APIGatewayV2HTTPResponse{}, invalid("bot_token must be a Telegram bot token (<digits>:<token>), on a telegram source only")
	}
	var secrets []store.SigningSecret
	var shown *string
	if scheme != verify.None {
		secret, err := sourceSecret(scheme, b.Secret)
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		secrets, shown = []store.SigningSecret{{Value: secret}}, &secret
	} else if b.Secret != nil {
		return events.APIGatewayV2HTTPResponse{}, invalid("scheme none takes no secret")
	}
	if err := checkVerifier(scheme, secrets, b.Header, b.ToleranceSeconds); err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	ws, err := c.workspaceFor(b.WorkspaceID)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	src, err := in.store.CreateSource(ctx, store.Source{
		WorkspaceID: ws, Name: b.Name, Scheme: b.Scheme, Header: b.Header, ToleranceSeconds: b.ToleranceSeconds, Secrets: secrets,
		BotToken: b.BotToken,
	})
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	in.h.audit(ctx, c, "source created", "source", src.Name, "scheme", src.Scheme, "target_workspace_id", ws)
	resp := respond(http.StatusCreated, CreatedSource{SourceView: in.sourceView(src), Secret: shown})
	resp.Headers["location"] = "/v1/sources/" + src.Name
	return resp, nil
}

// GET /v1/sources[?workspace_id=] → {data, next_cursor}: every source of the workspace, by name.
func (in *sourceRoutes) listSources(ctx context.Context, c Caller, req *events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	ws, err := c.workspaceFor(req.QueryStringParameters["workspace_id"])
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	srcs, err := in.store.ListSources(ctx, ws)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	out := list[SourceView]{Data: make([]SourceView, 0, len(srcs))}
	for _, src := range srcs {
		out.Data = append(out.Data, in.sourceView(src))
	}
	return respond(http.StatusOK, out), nil
}

// GET /v1/sources/{name}[?workspace_id=]. Another workspace's source is not found.
func (in *sourceRoutes) getSource(ctx context.Context, c Caller, req *events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	ws, name, err := sourceRef(c, req)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	src, err := in.store.GetSource(ctx, ws, name)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	return respond(http.StatusOK, in.sourceView(src)), nil
}

// DELETE /v1/sources/{name}[?workspace_id=] → 204.
func (in *sourceRoutes) deleteSource(ctx context.Context, c Caller, req *events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	ws, name, err := sourceRef(c, req)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	if err := in.store.DeleteSource(ctx, ws, name); err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	in.h.audit(ctx, c, "source deleted", "source", name, "target_workspace_id", ws)
	return noContent(), nil
}

// POST /v1/sources/{name}/rotate[?workspace_id=] {secret?, overlap_seconds?} → the source with the
// new secret, shown only here. The previous secrets keep verifying until previous_expires_at at
// the latest (default overlap 24 hours).
func (in *sourceRoutes) rotateSource(ctx context.Context, c Caller, req *events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	ws, name, err := sourceRef(c, req)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	var b struct {
		Secret         *string `json:"secret"`
		OverlapSeconds *int64  `json:"overlap_seconds"`
	}
	if err := body(req, &b, true); err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	overlap, err := rotateOverlap(b.OverlapSeconds, DefaultSourceRotateOverlap, MaxSourceRotateOverlap)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	cur, err := in.store.GetSource(ctx, ws, name)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	scheme := verify.Scheme(cur.Scheme)
	if scheme == verify.None {
		return events.APIGatewayV2HTTPResponse{}, invalid("scheme none has no secret to rotate")
	}
	secret, err := sourceSecret(scheme, b.Secret)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	if err := checkVerifier(scheme, []store.SigningSecret{{Value: secret}}, cur.Header, cur.ToleranceSeconds); err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	src, err := in.store.RotateSourceSecret(ctx, ws, name, secret, overlap)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	in.h.audit(ctx, c, "source secret rotated", "source", name, "overlap_seconds", int64(overlap/time.Second), "target_workspace_id", ws)
	// The store stamps the rotation's time as UpdatedAt; the previous secrets end overlap later.
	return respond(http.StatusOK, RotatedSource{SourceView: in.sourceView(src), Secret: secret, PreviousExpiresAt: src.UpdatedAt.Add(overlap)}), nil
}

// POST /v1/sources/{name}/retire[?workspace_id=] → the source: every previous secret stops
// verifying now; only the current one is left.
func (in *sourceRoutes) retireSource(ctx context.Context, c Caller, req *events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	ws, name, err := sourceRef(c, req)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	if err := body(req, &struct{}{}, true); err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	src, err := in.store.RetireSourceSecrets(ctx, ws, name)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	in.h.audit(ctx, c, "source previous secrets retired", "source", name, "target_workspace_id", ws)
	return respond(http.StatusOK, in.sourceView(src)), nil
}

// sourceRef is the workspace and the {name} path parameter of a request about one source. A name
// no source can have is not found, without asking the store.
func sourceRef(c Caller, req *events.APIGatewayV2HTTPRequest) (string, string, error) {
	ws, err := c.workspaceFor(req.QueryStringParameters["workspace_id"])
	if err != nil {
		return "", "", err
	}
	name := req.PathParameters["name"]
	if !validSourceName(name) {
		return "", "", apierr.New(apierr.NotFound, "source not found")
	}
	return ws, name, nil
}

// validSourceName reports whether s matches ^[a-z0-9][a-z0-9_-]{0,63}$.
func validSourceName(s string) bool { return validName(s, MaxSourceNameLen) }

// validName reports whether s matches ^[a-z0-9][a-z0-9_-]*$ and has at most maxLen bytes.
func validName(s string, maxLen int) bool {
	if s == "" || len(s) > maxLen || s[0] == '_' || s[0] == '-' {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func checkSourceName(s string) error {
	if !validSourceName(s) {
		return invalid("name must be 1 to %d of a-z, 0-9, _ and -, starting with a letter or digit", MaxSourceNameLen)
	}
	return nil
}

func checkScheme(s verify.Scheme) error {
	switch s {
	case verify.SharedSecret, verify.HMACSHA256, verify.StandardWebhooks, verify.Stripe, verify.GitHub,
		verify.Slack, verify.Telegram, verify.Bearer, verify.None:
		return nil
	case "":
		return invalid("scheme is required: shared_secret, hmac_sha256, standard_webhooks, stripe, github, slack, telegram, bearer or none")
	}
	return invalid("scheme must be shared_secret, hmac_sha256, standard_webhooks, stripe, github, slack, telegram, bearer or none")
}

// timestamped reports whether the scheme signs a timestamp, checked against a tolerance.
func timestamped(s verify.Scheme) bool {
	return s == verify.StandardWebhooks || s == verify.Stripe || s == verify.Slack
}

// checkSourceHeader: a lower-case HTTP header name (RFC 9110 token), for shared_secret and
// hmac_sha256 only; empty leaves the choice to the verifier.
func checkSourceHeader(s verify.Scheme, h string) error {
	if h == "" {
		return nil
	}
	if s != verify.SharedSecret && s != verify.HMACSHA256 {
		return invalid("header is only for the schemes shared_secret and hmac_sha256; %s uses its provider's headers", s)
	}
	ok := len(h) <= MaxSourceHeaderLen
	for _, c := range []byte(h) {
		ok = ok && (c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || isTokenSymbol(c))
	}
	if !ok {
		return invalid("header must be a lower-case HTTP header name of at most %d characters (a-z, 0-9, -, ...)", MaxSourceHeaderLen)
	}
	return nil
}

func isTokenSymbol(c byte) bool {
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// checkTolerance: 0 is the default; otherwise 1 to MaxToleranceSeconds, for timestamped schemes.
func checkTolerance(s verify.Scheme, sec int) error {
	switch {
	case sec == 0:
		return nil
	case !timestamped(s):
		return invalid("tolerance_seconds is only for the schemes standard_webhooks, stripe and slack")
	case sec < 1 || sec > MaxToleranceSeconds:
		return invalid("tolerance_seconds must be 0 (the default, %d) or from 1 to %d", DefaultToleranceSeconds, MaxToleranceSeconds)
	}
	return nil
}

// sourceSecret returns the given secret once it suits the scheme, or a new one. Its errors never
// quote the secret.
func sourceSecret(s verify.Scheme, given *string) (string, error) {
	if given == nil {
		if s == verify.Stripe || s == verify.Slack {
			// These providers issue the signing secret themselves: one made here would never match.
			return "", invalid("scheme %s needs the signing secret the provider shows (secret)", s)
		}
		return newSourceSecret(s), nil
	}
	return *given, checkSourceSecret(s, *given)
}

// newSourceSecret returns a random secret in the form the scheme's senders expect: whsec_ and the
// base64 of 24 bytes for standard_webhooks, 32 bytes in hex otherwise (valid as a Telegram
// secret_token, a bearer token and a header value).
func newSourceSecret(s verify.Scheme) string {
	if s == verify.StandardWebhooks {
		var b [24]byte
		rand.Read(b[:]) // never fails: crypto/rand aborts the program if the OS cannot supply randomness
		return "whsec_" + base64.StdEncoding.EncodeToString(b[:])
	}
	var b [32]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// checkSourceSecret validates a given secret for the scheme s (not none).
func checkSourceSecret(s verify.Scheme, sec string) error {
	if len(sec) > MaxSourceSecretLen {
		return invalid("secret must be at most %d characters", MaxSourceSecretLen)
	}
	switch s {
	case verify.StandardWebhooks:
		enc, ok := strings.CutPrefix(sec, "whsec_")
		key, err := base64.StdEncoding.DecodeString(enc)
		if !ok || err != nil || len(key) < MinWhsecBytes {
			return invalid("secret must be whsec_ followed by the standard base64 of at least %d bytes", MinWhsecBytes)
		}
		return nil
	case verify.Telegram:
		// Telegram's own rule for setWebhook's secret_token: 1 to 256 of these characters.
		ok := len(sec) >= 1
		for _, c := range []byte(sec) {
			ok = ok && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-')
		}
		if !ok {
			return invalid("secret must be 1 to %d of A-Z, a-z, 0-9, _ and - (Telegram's secret_token)", MaxSourceSecretLen)
		}
		return nil
	case verify.GitHub, verify.Stripe, verify.Slack:
		// The provider issued or took this secret: it is stored as it is, spaces and all, however
		// short (GitHub takes any text). Only what cannot be a secret is refused, and a Stripe
		// secret has Stripe's whsec_ prefix and something after it.
		if sec == "" || !fields.Printable(sec) {
			return invalid("secret must be 1 to %d printable characters, as the provider shows it", MaxSourceSecretLen)
		}
		if rest, ok := strings.CutPrefix(sec, "whsec_"); s == verify.Stripe && (!ok || rest == "") {
			return invalid("secret must be the whsec_… signing secret Stripe shows")
		}
		return nil
	}
	// Hookgate's own schemes (shared_secret, hmac_sha256, bearer): the sender and Hookgate share
	// a secret the operator chose, so it must be strong enough to stand alone.
	ok := len(sec) >= MinSourceSecretLen
	for _, c := range []byte(sec) {
		ok = ok && c > ' ' && c < 0x7f // printable ASCII, no white space
	}
	if !ok {
		return invalid("secret must be %d to %d printable ASCII characters without white space", MinSourceSecretLen, MaxSourceSecretLen)
	}
	return nil
}

// checkVerifier builds the verifier the doors will build from this configuration, so
// that no source is stored that could not verify anything. Its error is kept as the cause only
// (verify's errors never quote a secret, but the client gets a fixed message all the same).
func checkVerifier(s verify.Scheme, secrets []store.SigningSecret, header string, toleranceSec int) error {
	values := make([]string, 0, len(secrets))
	for _, sec := range secrets {
		values = append(values, sec.Value)
	}
	_, err := verify.New(s, values, verify.Options{Header: header, Tolerance: time.Duration(toleranceSec) * time.Second})
	if err != nil {
		return apierr.Wrap(apierr.Invalid, err, "the scheme, secret and header do not make a working verifier")
	}
	return nil
}
