package store

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/hookgate/hookgate/shared/seal"
)

// HeaderValues are a subscription's custom headers, name → value. The values can be credentials:
// they are stored sealed (seal.KindSubscriptionHeaders), opened only by a store WithOpener, and
// never printed, logged or encoded to JSON.
type HeaderValues map[string]string

// String shows the names only.
func (h HeaderValues) String() string {
	return "{" + strings.Join(slices.Sorted(maps.Keys(h)), ": [redacted], ") + ": [redacted]}"
}

// GoString shows the names only, for %#v.
func (h HeaderValues) GoString() string { return "store.HeaderValues" + h.String() }

// LogValue shows the names only, for log/slog.
func (h HeaderValues) LogValue() slog.Value { return slog.StringValue(h.String()) }

// MarshalJSON shows the names only, with redacted values.
func (h HeaderValues) MarshalJSON() ([]byte, error) {
	m := make(map[string]string, len(h))
	for k := range h {
		m[k] = "[redacted]"
	}
	return json.Marshal(m)
}

// CustomHeaders are a subscription's custom headers as stored: the names in clear, the values
// sealed together as one JSON object.
type CustomHeaders struct {
	Names  []string     // sorted; known whether or not the values are open
	Values HeaderValues // nil while sealed (a store without an opener read them)
	sealed []byte       // as stored; nil for values not stored yet, or stored in clear
}

// NewCustomHeaders returns headers to store (names already checked and canonical).
func NewCustomHeaders(values map[string]string) CustomHeaders {
	if len(values) == 0 {
		return CustomHeaders{}
	}
	return CustomHeaders{Names: slices.Sorted(maps.Keys(values)), Values: maps.Clone(values)}
}

func subHeadersSealCtx(ws, id string) seal.Context {
	return seal.Context{Workspace: ws, Kind: seal.KindSubscriptionHeaders, Item: id}
}

// encodeHeaders returns the header_names and headers attributes of h (both nil when there are no
// headers): the values sealed with the store's sealer, or in clear without one, as secrets are.
func (st *Store) encodeHeaders(ctx context.Context, ws, id string, h CustomHeaders) (names, values types.AttributeValue, err error) {
	if len(h.Names) == 0 {
		return nil, nil, nil
	}
	names = strList(h.Names)
	switch {
	case h.sealed != nil:
		return names, &types.AttributeValueMemberB{Value: h.sealed}, nil
	case st.sealer != nil:
		plain, err := json.Marshal(map[string]string(h.Values))
		if err != nil {
			return nil, nil, fmt.Errorf("encode the headers of subscription %s: %w", id, err)
		}
		b, err := st.sealer.Seal(ctx, plain, subHeadersSealCtx(ws, id))
		if err != nil {
			return nil, nil, fmt.Errorf("seal the headers of subscription %s: %w", id, err)
		}
		return names, &types.AttributeValueMemberB{Value: b}, nil
	}
	m := make(map[string]types.AttributeValue, len(h.Values))
	for k, v := range h.Values {
		m[k] = s(v)
	}
	return names, &types.AttributeValueMemberM{Value: m}, nil
}

// decodeHeaders reads the header attributes of a subscription's item.
func decodeHeaders(item map[string]types.AttributeValue) CustomHeaders {
	var h CustomHeaders
	if l, ok := item["header_names"].(*types.AttributeValueMemberL); ok {
		for _, v := range l.Value {
			if sv, ok := v.(*types.AttributeValueMemberS); ok {
				h.Names = append(h.Names, sv.Value)
			}
		}
	}
	switch v := item["headers"].(type) {
	case *types.AttributeValueMemberB:
		h.sealed = v.Value
	case *types.AttributeValueMemberM:
		h.Values = HeaderValues{}
		for k, x := range v.Value {
			if sv, ok := x.(*types.AttributeValueMemberS); ok {
				h.Values[k] = sv.Value
			}
		}
	}
	return h
}

// openHeaders opens sealed header values in place, when the store has an opener.
func (st *Store) openHeaders(ctx context.Context, ws, id string, h *CustomHeaders) error {
	if st.opener == nil || h.sealed == nil || h.Values != nil {
		return nil
	}
	b, err := st.opener.Open(ctx, h.sealed, subHeadersSealCtx(ws, id))
	if err != nil {
		return fmt.Errorf("open the headers of subscription %s: %w", id, err)
	}
	var v map[string]string
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("decode the headers of subscription %s: %w", id, err)
	}
	h.Values = v
	return nil
}

// withHeaders adds the headers of next to a subscription's update expression: SET both
// attributes, or REMOVE both when there are none.
func (st *Store) withHeaders(ctx context.Context, ws, id string, next CustomHeaders, upd string, vals map[string]types.AttributeValue) (string, error) {
	names, values, err := st.encodeHeaders(ctx, ws, id, next)
	if err != nil {
		return "", err
	}
	set, remove, _ := strings.Cut(upd, " REMOVE ")
	if names != nil {
		set += ", header_names = :hnames, headers = :hvalues"
		vals[":hnames"], vals[":hvalues"] = names, values
	} else {
		remove = strings.TrimPrefix(remove+", header_names, headers", ", ")
	}
	if remove == "" {
		return set, nil
	}
	return set + " REMOVE " + remove, nil
}

// withFilter adds the payload filter of next to a subscription's update expression: SET it, or
// REMOVE it when there is none.
func withFilter(filter string, upd string, vals map[string]types.AttributeValue) string {
	set, remove, _ := strings.Cut(upd, " REMOVE ")
	if filter != "" {
		set += ", payload_filter = :pfilter"
		vals[":pfilter"] = s(filter)
	} else {
		remove = strings.TrimPrefix(remove+", payload_filter", ", ")
	}
	if remove == "" {
		return set
	}
	return set + " REMOVE " + remove
}
