package cost

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
)

// Units are one scenario's billed units per webhook: what the pinning test compares.
type Units struct {
	WriteUnits     float64 `json:"write_units"`
	ReadUnits      float64 `json:"read_units"`
	SQSRequests    float64 `json:"sqs_requests"`
	LambdaRequests float64 `json:"lambda_requests"`
	HTTPRequests   float64 `json:"http_requests"`
}

// Figures are a scenario's units and dollars per webhook.
type Figures struct {
	Units
	SQSFIFO, SQSStandard float64
	GBSeconds            float64
	LogBytes             float64
	Dollars              map[string]float64 // per webhook, by service
	StorageBytes         float64            // per webhook kept
	StorageTTLBytes      float64            // of which expires by TTL
}

// Figure turns a result into figures per webhook, with the memory of each function (MB).
func Figure(r Result, memory map[string]int, p Prices, durations map[string]int) Figures {
	n := float64(r.Webhooks)
	u := r.Usage
	var f Figures
	for _, l := range u.Dynamo {
		f.WriteUnits += l.WriteUnits
		f.ReadUnits += l.ReadUnits
	}
	for k, v := range u.SQS {
		if strings.HasSuffix(k, " fifo") {
			f.SQSFIFO += float64(v)
		} else {
			f.SQSStandard += float64(v)
		}
	}
	for fn, c := range u.Invocations {
		f.LambdaRequests += float64(c)
		f.GBSeconds += float64(c) * float64(memory[fn]) / 1024 * float64(durations[fn]) / 1000
	}
	for _, b := range u.LogBytes {
		f.LogBytes += float64(b)
	}
	f.HTTPRequests = float64(u.HTTPRequests)
	f.WriteUnits, f.ReadUnits, f.SQSFIFO, f.SQSStandard = f.WriteUnits/n, f.ReadUnits/n, f.SQSFIFO/n, f.SQSStandard/n
	f.SQSRequests = f.SQSFIFO + f.SQSStandard
	f.LambdaRequests, f.GBSeconds, f.HTTPRequests, f.LogBytes = f.LambdaRequests/n, f.GBSeconds/n, f.HTTPRequests/n, f.LogBytes/n
	f.StorageBytes, f.StorageTTLBytes = float64(r.Storage.Bytes)/n, float64(r.Storage.TTLBytes)/n
	f.Dollars = map[string]float64{
		"DynamoDB writes": f.WriteUnits * p.WriteUnit,
		"DynamoDB reads":  f.ReadUnits * p.ReadUnit,
		"SQS":             f.SQSFIFO*p.SQSFIFO + f.SQSStandard*p.SQSStandard,
		"Lambda":          f.LambdaRequests*p.LambdaRequest + f.GBSeconds*p.LambdaGBSecond,
		"HTTP API":        f.HTTPRequests * p.HTTPRequest,
		"Logs":            f.LogBytes / (1 << 30) * p.LogGB,
	}
	return f
}

// Total is the dollars per webhook.
func (f Figures) Total() float64 {
	t := 0.0
	for _, v := range f.Dollars {
		t += v
	}
	return t
}

// AtRest is the storage cost per month of the items a webhook leaves, table and index, with
// point-in-time recovery (on in the template).
func (f Figures) AtRest(p Prices, bytes float64) float64 {
	return bytes / (1 << 30) * (p.StorageGBMonth + p.PITRGBMo)
}

// Report prints every scenario: units and dollars per million webhooks, the DynamoDB breakdown by
// operation and item kind, SQS, Lambda, and storage at rest.
func Report(w io.Writer, results []Result, memory map[string]int, p Prices, durations map[string]int) {
	fmt.Fprintf(w, "Hookgate: what a webhook costs on AWS (us-east-1 list prices of %s, local/cost/prices.go)\n", p.Date)
	fmt.Fprintf(w, "Units are counted at the wire of the local stack (DynamoDB Local, fauxqs) and are per webhook;\n")
	fmt.Fprintf(w, "dollars are per million webhooks. Lambda GB-s use the template's memory and the durations assumed in prices.go.\n")
	var summary []string
	for _, r := range results {
		f := Figure(r, memory, p, durations)
		fmt.Fprintf(w, "\n(%s) %s — %d webhooks metered\n", r.Name, r.Title, r.Webhooks)
		fmt.Fprintf(w, "  DynamoDB  %-44s %4s %8s %8s\n", "operation · item kind (· index)", "req", "WU", "RU")
		for _, l := range r.Usage.Lines() {
			name := l.Op + " · " + l.Kind
			if l.Index != "" {
				name += " · " + l.Index
			}
			n := float64(r.Webhooks)
			fmt.Fprintf(w, "            %-44s %4s %8s %8s\n", name, num(float64(l.Requests)/n), num(l.WriteUnits/n), num(l.ReadUnits/n))
		}
		fmt.Fprintf(w, "            %-44s %4s %8s %8s\n", "total", "", num(f.WriteUnits), num(f.ReadUnits))
		fmt.Fprintf(w, "  SQS       ")
		for _, k := range slices.Sorted(maps.Keys(r.Usage.SQS)) {
			fmt.Fprintf(w, "%s %s  ", k, num(float64(r.Usage.SQS[k])/float64(r.Webhooks)))
		}
		fmt.Fprintf(w, "(+%d empty polls, not per webhook)\n", r.Usage.EmptyPolls)
		fmt.Fprintf(w, "  Lambda    ")
		for _, k := range slices.Sorted(maps.Keys(r.Usage.Invocations)) {
			fmt.Fprintf(w, "%s %s  ", strings.TrimSuffix(k, "Function"), num(float64(r.Usage.Invocations[k])/float64(r.Webhooks)))
		}
		fmt.Fprintf(w, "= %s requests, %.4f GB-s\n", num(f.LambdaRequests), f.GBSeconds)
		fmt.Fprintf(w, "  HTTP API  %s requests   Logs %.0f bytes\n", num(f.HTTPRequests), f.LogBytes)
		fmt.Fprintf(w, "  $ per million webhooks: ")
		for _, k := range []string{"DynamoDB writes", "DynamoDB reads", "SQS", "Lambda", "HTTP API", "Logs"} {
			fmt.Fprintf(w, "%s %.2f · ", k, f.Dollars[k]*1e6)
		}
		fmt.Fprintf(w, "total %.2f\n", f.Total()*1e6)
		fmt.Fprintf(w, "  at rest: %.0f bytes per webhook kept (table + index, 100 B/item overhead), %.0f of them expire by TTL;\n", f.StorageBytes, f.StorageTTLBytes)
		fmt.Fprintf(w, "           $%.3f per month per million webhooks kept ($%.3f once the TTL items expired)\n",
			f.AtRest(p, f.StorageBytes)*1e6, f.AtRest(p, f.StorageBytes-f.StorageTTLBytes)*1e6)
		summary = append(summary, fmt.Sprintf("| (%s) %s | %s | %s | %s | %s | %s | $%.2f | $%.3f |", r.Name, r.Title,
			num(f.WriteUnits), num(f.ReadUnits), num(f.SQSRequests), num(f.LambdaRequests), num(f.HTTPRequests), f.Total()*1e6, f.AtRest(p, f.StorageBytes)*1e6))
	}
	fmt.Fprintf(w, "\nSummary per webhook ($ per million webhooks; at rest: $ per month per million kept)\n")
	fmt.Fprintf(w, "| scenario | write units | read units | SQS requests | Lambda requests | HTTP requests | $ / M | at rest $ / M / month |\n|---|---|---|---|---|---|---|---|\n")
	for _, s := range summary {
		fmt.Fprintln(w, s)
	}
}

func num(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2f", v)
}
