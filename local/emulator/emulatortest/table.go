package emulatortest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/hookgate/hookgate/local/emulator"
	"github.com/hookgate/hookgate/local/provision"
	"github.com/hookgate/hookgate/local/template"
	"github.com/hookgate/hookgate/shared/awscfg"
)

// tableSeq tells apart the prefixes Table gives within one test binary.
var tableSeq atomic.Int64

// Table creates on DynamoDB Local (see Dynamo) the tables that template.yaml, at the root of the
// module, declares, under a fresh prefix that starts with prefix, and returns a client for it and
// the name of the table logically named Table. It fails the test on any error.
func Table(tb testing.TB, prefix string) (*dynamodb.Client, string) {
	tb.Helper()
	endpoint := Dynamo(tb)
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	cfg, err := awscfg.Load(ctx, func(k string) string {
		return map[string]string{awscfg.EnvDynamoEndpoint: endpoint}[k]
	})
	if err != nil {
		tb.Fatalf("emulatortest: %v", err)
	}
	wd, err := os.Getwd()
	if err != nil {
		tb.Fatalf("emulatortest: %v", err)
	}
	root, err := emulator.FindRoot(wd)
	if err != nil {
		tb.Fatalf("emulatortest: %v", err)
	}
	tpl, err := template.Load(filepath.Join(root, "template.yaml"))
	if err != nil {
		tb.Fatalf("emulatortest: %v", err)
	}
	prefix = fmt.Sprintf("%s%d%d-", prefix, time.Now().UnixNano()%1e6, tableSeq.Add(1))
	tables, _ := provision.Specs(tpl, prefix, 0)
	for i := range tables {
		// DynamoDB Local deletes items whose TTL has passed, by the machine's clock, while the
		// tests write with fixed clocks: a test dated a month ago would lose its items mid-run.
		// The TTL attribute is still written and checked; only the sweeper is left off.
		tables[i].TTLAttribute = ""
	}
	db := cfg.DynamoDB()
	if err := provision.Tables(ctx, db, tables); err != nil {
		tb.Fatalf("emulatortest: %v", err)
	}
	return db, prefix + "Table"
}
