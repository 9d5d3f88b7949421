package eventfilter

import (
	"encoding/json/jsontext"
	"strings"
	"testing"
)

const event = `{"id":"evt_1","type":"webhook.stripe.charge_succeeded","created_at":"2026-11-25T09:00:00Z","workspace_id":"ws",
"data":{"amount":150,"currency":"eur","paid":true,"note":null,"tags":["vip","eu"],"customer":{"id":"cus_1","country":"DE"},
"items":[{"sku":"a","qty":2},{"sku":"b","qty":1}],"big":9007199254740993}}`

func TestMatch(t *testing.T) {
	ev, err := Decode([]byte(event))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		filter string
		want   bool
	}{
		{`{}`, true},
		{`{"type":"webhook.stripe.charge_succeeded"}`, true},
		{`{"type":"run.completed"}`, false},
		{`{"data.amount":150}`, true},
		{`{"data.amount":150.0}`, true},
		{`{"data.amount":"150"}`, false},
		{`{"data.amount":{"$eq":150}}`, true},
		{`{"data.amount":{"$ne":150}}`, false},
		{`{"data.missing":{"$ne":1}}`, true},
		{`{"data.amount":{"$gte":100}}`, true},
		{`{"data.amount":{"$gt":150}}`, false},
		{`{"data.amount":{"$gte":150,"$lt":200}}`, true},
		{`{"data.amount":{"$gte":100,"$lt":150}}`, false},
		{`{"data.amount":{"$lte":150}}`, true},
		{`{"data.amount":{"$lt":"z"}}`, false},
		{`{"created_at":{"$gte":"2026-11-01T00:00:00Z"}}`, true},
		{`{"created_at":{"$lt":"2026-11-01T00:00:00Z"}}`, false},
		{`{"data.missing":{"$gt":0}}`, false},
		{`{"data.currency":{"$in":["usd","eur"]}}`, true},
		{`{"data.currency":{"$in":["usd"]}}`, false},
		{`{"data.currency":{"$nin":["usd"]}}`, true},
		{`{"data.missing":{"$nin":["usd"]}}`, true},
		{`{"data.missing":{"$in":[null]}}`, false},
		{`{"data.note":null}`, true},
		{`{"data.note":{"$exists":true}}`, true},
		{`{"data.missing":{"$exists":false}}`, true},
		{`{"data.missing":{"$exists":true}}`, false},
		{`{"data.paid":true}`, true},
		{`{"data.paid":false}`, false},
		{`{"data.customer.country":"DE"}`, true},
		{`{"data.customer":{"id":"cus_1","country":"DE"}}`, true},
		{`{"data.customer":{"$eq":{"country":"DE","id":"cus_1"}}}`, true},
		{`{"data.customer":{"id":"cus_1"}}`, false},
		{`{"data.tags":["vip","eu"]}`, true},
		{`{"data.tags.0":"vip"}`, true},
		{`{"data.items.1.sku":"b"}`, true},
		{`{"data.items.2.sku":"c"}`, false},
		{`{"data.items.x":1}`, false},
		{`{"data.amount.x":1}`, false},
		{`{"data.currency":"eur","data.amount":{"$gt":1000}}`, false},
		{`{"$or":[{"data.currency":"usd"},{"data.amount":{"$gt":100}}]}`, true},
		{`{"$or":[{"data.currency":"usd"},{"data.amount":{"$gt":1000}}]}`, false},
		{`{"$and":[{"data.currency":"eur"},{"data.paid":true}]}`, true},
		{`{"$not":{"data.currency":"eur"}}`, false},
		{`{"$not":{"$or":[{"data.currency":"usd"},{"data.paid":false}]}}`, true},
		{`{"data.empty":{}}`, false},
	} {
		f, err := Compile([]byte(tt.filter))
		if err != nil {
			t.Errorf("Compile(%s): %v", tt.filter, err)
			continue
		}
		if got := f.Match(ev); got != tt.want {
			t.Errorf("%s matched %v, want %v", tt.filter, got, tt.want)
		}
		x, err := NewExtractor(f).Extract([]byte(event))
		if err != nil {
			t.Fatal(err)
		}
		if got := f.Match(x); got != tt.want {
			t.Errorf("%s matched the extracted event %v, want %v", tt.filter, got, tt.want)
		}
	}
	var none *Filter
	if !none.Match(ev) || !none.Empty() {
		t.Error("a nil filter must match everything")
	}
}

func TestCompileRefusesNamingTheProblem(t *testing.T) {
	deep := `{"a":1}`
	for range MaxDepth {
		deep = `{"$not":` + deep + `}`
	}
	many := `{"$and":[` + strings.Repeat(`{"a":1},`, MaxConditions) + `{"a":1}]}`
	in := `{"a":{"$in":[` + strings.Repeat(`1,`, MaxInValues) + `1]}}`
	for _, tt := range []struct{ filter, want string }{
		{``, "not valid JSON"},
		{`[]`, "JSON object"},
		{`"x"`, "JSON object"},
		{`{} {}`, "single JSON object"},
		{`{"a":1`, "not valid JSON"},
		{`{"$where":"1"}`, `"$where" is not an operator here`},
		{`{"a":{"$regex":"x"}}`, `"$regex" is not an operator`},
		{`{"a":{"$eq":1,"b":2}}`, `cannot be mixed`},
		{`{"a":{"$gt":true}}`, `$gt takes a number or a string`},
		{`{"a":{"$in":"x"}}`, `$in takes an array`},
		{`{"a":{"$exists":1}}`, `$exists takes true or false`},
		{`{"$and":[]}`, `$and takes a non-empty array`},
		{`{"$or":{}}`, `$or takes a non-empty array`},
		{`{"$or":[{}]}`, `$or[0]: must be a non-empty filter object`},
		{`{"$not":[]}`, `$not takes a non-empty filter object`},
		{`{"a..b":1}`, `path "a..b" has an empty part`},
		{`{".a":1}`, `empty part`},
		{`{"":1}`, `a path is empty`},
		{`{"` + strings.Repeat("a.", MaxPathParts) + `a":1}`, `more than 16 parts`},
		{`{"` + strings.Repeat("a", MaxPathBytes+1) + `":1}`, `longer than 256 bytes`},
		{deep, "nested more than 8 levels"},
		{many, "more than 64 conditions"},
		{in, "at most 64 values"},
		{`{"a":"` + strings.Repeat("x", MaxBytes) + `"}`, "at most 4096 bytes"},
		{`{"a":{"$gt":1e999}}`, "out of range"},
	} {
		_, err := Compile([]byte(tt.filter))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Compile(%.80s) = %v, want an error with %q", tt.filter, err, tt.want)
		}
	}
}

// dupFree reports whether no object of the JSON gives a name twice.
func dupFree(s string) bool {
	d := jsontext.NewDecoder(strings.NewReader(s))
	_, err := d.ReadValue()
	return err == nil
}

func FuzzCompileAndMatch(f *testing.F) {
	for _, s := range []string{`{}`, `{"data.a":1}`, `{"$or":[{"a":{"$gt":1}},{"$not":{"b":{"$in":[1,"x",null]}}}]}`, `{"a":{"$exists":true,"$ne":{"x":[1]}}}`} {
		f.Add(s, `{"type":"x","data":{"a":2,"b":[1,{"c":null}]}}`)
	}
	f.Fuzz(func(t *testing.T, filter, ev string) {
		c, err := Compile([]byte(filter))
		if err != nil {
			return
		}
		v, err := Decode([]byte(ev))
		if err != nil {
			return
		}
		want := c.Match(v)
		// The one-pass extractor agrees with the whole decode, also with an unrelated filter's
		// paths in the same pass.
		other, _ := Compile([]byte(`{"data.a":1,"data.b.1.c":null,"type":{"$exists":true}}`))
		x, err := NewExtractor(c, other).Extract([]byte(ev))
		if err != nil {
			if strings.Contains(err.Error(), "duplicate") {
				return
			}
			t.Fatalf("Extract(%s): %v, but Decode took it", ev, err)
		}
		if !dupFree(ev) {
			return // a name given twice: the last wins in both, but a filter may read the first's children
		}
		if got := c.Match(x); got != want {
			t.Fatalf("filter %s on %s: extracted %v, decoded %v", filter, ev, got, want)
		}
	})
}
