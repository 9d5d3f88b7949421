package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hookgate/hookgate/shared/verify"
)

func (a *app) signCmd() *cobra.Command {
	var scheme, secret, data, id, header string
	var ts int64
	cmd := &cobra.Command{
		Use:   "sign --scheme SCHEME --secret SECRET --data BODY",
		Short: "Print the headers a sender of the scheme puts on a body",
		Long: "Prints the headers (Name: value, one a line) a sender signs a body with, for any scheme Hookgate\n" +
			"verifies: " + schemeList() + ".",
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			s := verify.Scheme(scheme)
			if !known(s) {
				return usagef("--scheme: one of %s", schemeList())
			}
			body, err := readData(data, a.io.Stdin)
			if err != nil {
				return err
			}
			at := time.Now()
			if ts != 0 {
				at = time.Unix(ts, 0)
			}
			if id == "" {
				id = "msg_" + randomHex(12)
			}
			fields, err := verify.Sign(s, secret, body, id, at, verify.Options{Header: header})
			if err != nil {
				return usagef("%v", err)
			}
			if a.json {
				h := map[string]string{}
				for _, f := range fields {
					h[f.Name] = f.Value
				}
				a.out().value(map[string]any{"scheme": s, "headers": h})
				return nil
			}
			for _, f := range fields {
				fmt.Fprintf(a.io.Stdout, "%s: %s\n", f.Name, f.Value)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&scheme, "scheme", "", "the scheme (required): "+schemeList())
	cmd.Flags().StringVar(&secret, "secret", "", "the secret (required)")
	cmd.Flags().StringVar(&data, "data", "", "the body: as given, @file, or - for stdin")
	cmd.Flags().StringVar(&id, "id", "", "the delivery id (webhook-id, X-GitHub-Delivery; default: a new one)")
	cmd.Flags().Int64Var(&ts, "timestamp", 0, "the signed time, unix seconds (default: now)")
	cmd.Flags().StringVar(&header, "header", "", "shared_secret and hmac_sha256: another header name")
	_ = cmd.MarkFlagRequired("scheme")
	return cmd
}

func (a *app) verifyCmd() *cobra.Command {
	var scheme, data, header string
	var secrets, headers []string
	var now int64
	var tolerance time.Duration
	cmd := &cobra.Command{
		Use:   "verify --scheme SCHEME --secret SECRET -H 'Name: value' --data BODY",
		Short: "Say whether a request's headers prove its body for a scheme, and why not",
		Long: "Checks a request as Hookgate's doors do (raw body, constant time, timestamps within the tolerance).\n" +
			"Prints yes and exits 0, or no with the reason and exits 1. Schemes: " + schemeList() + ".",
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			s := verify.Scheme(scheme)
			if !known(s) {
				return usagef("--scheme: one of %s", schemeList())
			}
			v, err := verify.New(s, secrets, verify.Options{Header: header, Tolerance: tolerance})
			if err != nil {
				return usagef("%v", err)
			}
			body, err := readData(data, a.io.Stdin)
			if err != nil {
				return err
			}
			h := map[string]string{}
			for _, kv := range headers {
				k, val, ok := strings.Cut(kv, ":")
				if !ok {
					return usagef("-H %q: want 'Name: value'", kv)
				}
				k = strings.ToLower(strings.TrimSpace(k))
				if prev, dup := h[k]; dup {
					val = prev + "," + strings.TrimSpace(val)
				}
				h[k] = strings.TrimSpace(val)
			}
			at := time.Now()
			if now != 0 {
				at = time.Unix(now, 0)
			}
			res, verr := v.Verify(func(name string) string { return h[name] }, body, at)
			if a.json {
				out := map[string]any{"valid": verr == nil, "scheme": s}
				if verr != nil {
					out["reason"] = verr.Error()
				} else {
					if res.DeliveryID != "" {
						out["delivery_id"] = res.DeliveryID
					}
					if !res.Timestamp.IsZero() {
						out["timestamp"] = res.Timestamp.Unix()
					}
				}
				a.out().value(out)
			} else if verr == nil {
				fmt.Fprintf(a.io.Stdout, "yes: a valid %s signature%s\n", s, signedAt(res))
			} else {
				fmt.Fprintf(a.io.Stdout, "no: %v\n", verr)
			}
			if verr != nil {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&scheme, "scheme", "", "the scheme (required): "+schemeList())
	cmd.Flags().StringArrayVar(&secrets, "secret", nil, "a secret that may have signed (repeat during a rotation)")
	cmd.Flags().StringArrayVarP(&headers, "header", "H", nil, "a request header, 'Name: value' (repeat)")
	cmd.Flags().StringVar(&data, "data", "", "the raw body: as given, @file, or - for stdin")
	cmd.Flags().StringVar(&header, "signature-header", "", "shared_secret and hmac_sha256: the source's own header")
	cmd.Flags().Int64Var(&now, "now", 0, "check timestamps against this unix time (default: now)")
	cmd.Flags().DurationVar(&tolerance, "tolerance", 0, "how far a signed time may be from now (default 5m)")
	_ = cmd.MarkFlagRequired("scheme")
	return cmd
}

func signedAt(r verify.Result) string {
	var parts []string
	if r.DeliveryID != "" {
		parts = append(parts, "delivery "+r.DeliveryID)
	}
	if !r.Timestamp.IsZero() {
		parts = append(parts, "signed at "+strconv.FormatInt(r.Timestamp.Unix(), 10))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}
