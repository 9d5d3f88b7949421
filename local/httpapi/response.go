package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
)

// response is a function response mapped to HTTP.
type response struct {
	status int
	header http.Header
	body   []byte
}

// decodeResponse maps a function's payload 2.0 response as API Gateway does. A JSON object with a
// statusCode is a structured response; any other valid JSON is the body of a 200 response with
// content-type application/json (a JSON string gives its value, anything else the JSON itself).
// Invalid JSON or a malformed structured response is an error (a 500 to the client).
func decodeResponse(out []byte) (*response, error) {
	out = bytes.TrimSpace(out)
	if !json.Valid(out) {
		return nil, errors.New("response is not valid JSON")
	}
	if out[0] == '{' {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(out, &fields); err != nil {
			return nil, fmt.Errorf("decode response: %w", err)
		}
		if sc, ok := fields["statusCode"]; ok && string(sc) != "null" {
			return structuredResponse(fields)
		}
	}
	body := out
	if out[0] == '"' {
		var s string
		if err := json.Unmarshal(out, &s); err != nil {
			return nil, fmt.Errorf("decode response: %w", err)
		}
		body = []byte(s)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	return &response{status: http.StatusOK, header: h, body: body}, nil
}

func structuredResponse(fields map[string]json.RawMessage) (*response, error) {
	status, err := statusCodeOf(fields["statusCode"])
	if err != nil {
		return nil, err
	}
	var (
		headers map[string]string
		multi   map[string][]string
		cookies []string
		body    string
		b64     bool
	)
	for name, dst := range map[string]any{
		"headers": &headers, "multiValueHeaders": &multi, "cookies": &cookies,
		"body": &body, "isBase64Encoded": &b64,
	} {
		raw, ok := fields[name]
		if !ok || string(raw) == "null" {
			continue
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			return nil, fmt.Errorf("response field %s: %w", name, err)
		}
	}

	h := http.Header{}
	for k, vs := range multi {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	// A header in both maps keeps the multi-value list, plus the single value if it is not in it.
	for k, v := range headers {
		ck := http.CanonicalHeaderKey(k)
		if !slices.Contains(h[ck], v) {
			h[ck] = append(h[ck], v)
		}
	}
	if len(cookies) > 0 {
		h["Set-Cookie"] = append(slices.Clone(cookies), h["Set-Cookie"]...)
	}
	// The gateway owns framing and its own request id.
	for _, k := range []string{"Content-Length", "Transfer-Encoding", "Connection", "Apigw-Requestid"} {
		h.Del(k)
	}

	out := []byte(body)
	if b64 {
		if out, err = base64.StdEncoding.DecodeString(body); err != nil {
			return nil, fmt.Errorf("response body is not valid base64: %w", err)
		}
	}
	return &response{status: status, header: h, body: out}, nil
}

// statusCodeOf reads statusCode, a JSON number or a numeric string, and checks its range.
func statusCodeOf(raw json.RawMessage) (int, error) {
	var code int
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, fmt.Errorf("statusCode: %w", err)
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			return 0, fmt.Errorf("statusCode %q is not a number", s)
		}
		code = n
	} else if err := json.Unmarshal(raw, &code); err != nil {
		return 0, fmt.Errorf("statusCode: %w", err)
	}
	if code < 100 || code > 599 {
		return 0, fmt.Errorf("statusCode %d is out of range", code)
	}
	return code, nil
}
