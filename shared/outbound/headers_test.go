package outbound

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestCheckHeadersAcceptsAndCanonicalises(t *testing.T) {
	got, err := CheckHeaders(map[string]string{"authorization": "Bearer abc", "x-tenant-id": "t 1\twith tab", "X-Empty": ""})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got["Authorization"] != "Bearer abc" || got["X-Tenant-Id"] != "t 1\twith tab" {
		t.Fatalf("got %v", got)
	}
	if got, err := CheckHeaders(nil); err != nil || len(got) != 0 {
		t.Fatalf("no headers: %v %v", got, err)
	}
}

func TestCheckHeadersRefusesNamingTheHeader(t *testing.T) {
	many := map[string]string{}
	for i := range MaxCustomHeaders + 1 {
		many["X-H"+strings.Repeat("a", i)] = "v"
	}
	big := map[string]string{}
	for i := range 5 {
		big["X-Big-"+string(rune('a'+i))] = strings.Repeat("v", MaxHeaderValueBytes)
	}
	for _, tt := range []struct {
		h    map[string]string
		want string // in the error
	}{
		{map[string]string{"Host": "evil.example"}, `"Host"`},
		{map[string]string{"host": "evil.example"}, `"host"`},
		{map[string]string{"Content-Length": "1"}, `"Content-Length"`},
		{map[string]string{"Content-Type": "text/plain"}, `"Content-Type"`},
		{map[string]string{"content-encoding": "gzip"}, `"content-encoding"`},
		{map[string]string{"Transfer-Encoding": "chunked"}, `"Transfer-Encoding"`},
		{map[string]string{"Connection": "close"}, `"Connection"`},
		{map[string]string{"Keep-Alive": "1"}, `"Keep-Alive"`},
		{map[string]string{"TE": "trailers"}, `"TE"`},
		{map[string]string{"Upgrade": "h2c"}, `"Upgrade"`},
		{map[string]string{"Proxy-Authorization": "x"}, `"Proxy-Authorization"`},
		{map[string]string{"User-Agent": "me"}, `"User-Agent"`},
		{map[string]string{"X-Webhook-Signature": "sha256=00"}, `"X-Webhook-Signature"`},
		{map[string]string{"webhook-signature": "v1,x"}, `"webhook-signature"`},
		{map[string]string{"Webhook-Id": "x"}, `"Webhook-Id"`},
		{map[string]string{"webhook-anything": "x"}, `"webhook-anything"`},
		{map[string]string{"Hookgate-Hop": "0"}, `"Hookgate-Hop"`},
		{map[string]string{"traceparent": "00-x"}, `"traceparent"`},
		{map[string]string{"Accept-Encoding": "br"}, `"Accept-Encoding"`},
		{map[string]string{"Bad Name": "x"}, `"Bad Name"`},
		{map[string]string{"X-A:": "x"}, `"X-A:"`},
		{map[string]string{"": "x"}, `""`},
		{map[string]string{"X-Crlf": "a\r\nInjected: yes"}, `"X-Crlf"`},
		{map[string]string{"X-Lf": "a\nb"}, `"X-Lf"`},
		{map[string]string{"X-Nul": "a\x00b"}, `"X-Nul"`},
		{map[string]string{"X-Bad-Utf8": "a\xffb"}, `"X-Bad-Utf8"`},
		{map[string]string{"X-Long": strings.Repeat("v", MaxHeaderValueBytes+1)}, `"X-Long"`},
		{map[string]string{"X-" + strings.Repeat("n", MaxHeaderNameBytes): "v"}, `at most 128 bytes`},
		{map[string]string{"X-Dup": "1", "x-dup": "2"}, `twice`},
		{many, "at most 20"},
		{big, "at most 8192 bytes"},
	} {
		_, err := CheckHeaders(tt.h)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("CheckHeaders(%.60q) = %v, want an error with %s", tt.h, err, tt.want)
		}
		if err != nil {
			for _, v := range tt.h {
				if len(v) > 3 && strings.Contains(err.Error(), v) {
					t.Errorf("the error shows a value: %v", err)
				}
			}
		}
	}
}

// Custom headers arrive with the delivery; they never replace one the delivery sets, even when
// they reach Post without CheckHeaders.
func TestPostSendsCustomHeaders(t *testing.T) {
	got := make(chan http.Header, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	c := NewClient(ClientOptions{AllowPrivate: true, Timeout: time.Second})
	res := Post(context.Background(), c, "Hookgate/test", Request{
		URL: srv.URL, MsgID: vecMsgID, Body: []byte(vecBody), Signer: mustSigner(t, vecSecret), Now: time.Unix(vecTS, 0),
		Headers: map[string]string{"Authorization": "Bearer t0k", "X-Tenant": "acme", "Content-Type": "text/plain", "Webhook-Id": "forged", "User-Agent": "x"},
	})
	if !res.Success() {
		t.Fatalf("result %+v", res)
	}
	h := <-got
	for k, v := range map[string]string{
		"Authorization": "Bearer t0k", "X-Tenant": "acme", "Content-Type": "application/json", "Webhook-Id": vecMsgID, "User-Agent": "Hookgate/test",
	} {
		if h.Get(k) != v || len(h.Values(k)) != 1 {
			t.Errorf("%s = %q, want %q", k, h.Values(k), v)
		}
	}
}
