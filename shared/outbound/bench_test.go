package outbound

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkSign1KB and BenchmarkSign64KB: Signer.Headers against the bare HMACs it must compute,
// measured in the same run; `make bench` prints signer/baseline (target ≤ 1.3×).
func BenchmarkSign1KB(b *testing.B)  { benchSign(b, 1<<10) }
func BenchmarkSign64KB(b *testing.B) { benchSign(b, 64<<10) }

func benchSign(b *testing.B, size int) {
	body := bytes.Repeat([]byte("x"), size)
	ts := time.Unix(vecTS, 0)
	b.Run("baseline", func(b *testing.B) {
		// The two HMAC-SHA256 and nothing else: states built once, the signed prefix precomputed,
		// no encoding, no header.
		key, _ := decodeSecret(vecSecret)
		std, raw := hmac.New(sha256.New, key), hmac.New(sha256.New, []byte(vecSecret))
		prefix := []byte(vecMsgID + ".1614265330.")
		var sum [sha256.Size]byte
		b.SetBytes(int64(size))
		b.ReportAllocs()
		for b.Loop() {
			std.Reset()
			std.Write(prefix)
			std.Write(body)
			std.Sum(sum[:0])
			raw.Reset()
			raw.Write(body)
			raw.Sum(sum[:0])
		}
	})
	b.Run("signer", func(b *testing.B) {
		s := mustSigner(b, vecSecret)
		h := http.Header{}
		b.SetBytes(int64(size))
		b.ReportAllocs()
		for b.Loop() {
			s.Headers(vecMsgID, ts, body, h)
		}
	})
}

// BenchmarkPost: one signed delivery through NewClient against a bare net/http POST of the same
// 1 KB body to the same loopback server (204), sequentially; target deliver ≤ 1.43× (≥ 0.7× the
// baseline's throughput).
func BenchmarkPost(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 1<<10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	ctx := context.Background()

	b.Run("baseline", func(b *testing.B) {
		c := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
		defer c.CloseIdleConnections()
		b.ReportAllocs()
		for b.Loop() {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, bytes.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := c.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	})
	b.Run("deliver", func(b *testing.B) {
		c := NewClient(ClientOptions{AllowPrivate: true})
		defer c.CloseIdleConnections()
		req := Request{URL: srv.URL, MsgID: vecMsgID, Body: body, Signer: mustSigner(b, vecSecret)}
		b.ReportAllocs()
		for b.Loop() {
			if res := Post(ctx, c, "Hookgate/bench", req); res.StatusCode != http.StatusNoContent {
				b.Fatalf("result %+v", res)
			}
		}
	})
}
