package provision_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/hookgate/hookgate/local/emulator/emulatortest"
	"github.com/hookgate/hookgate/local/provision"
	"github.com/hookgate/hookgate/shared/awscfg"
)

func TestMain(m *testing.M) { os.Exit(emulatortest.Run(m)) }

// The SDK clients satisfy the interfaces.
var (
	_ provision.DynamoAPI = (*dynamodb.Client)(nil)
	_ provision.SQSAPI    = (*sqs.Client)(nil)
)

// config loads awscfg with one endpoint override, the rest of the environment passed through.
func config(t *testing.T, key, endpoint string) awscfg.Config {
	t.Helper()
	getenv := func(k string) string {
		switch k {
		case key:
			return endpoint
		case awscfg.EnvDynamoEndpoint, awscfg.EnvSQSEndpoint:
			return ""
		}
		return os.Getenv(k)
	}
	cfg, err := awscfg.Load(context.Background(), getenv)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func dynamoClient(t *testing.T) *dynamodb.Client {
	return config(t, awscfg.EnvDynamoEndpoint, emulatortest.Dynamo(t)).DynamoDB()
}

func sqsClient(t *testing.T) *sqs.Client {
	return config(t, awscfg.EnvSQSEndpoint, emulatortest.SQS(t)).SQS()
}

// unique returns a name no other test uses: prefix plus random hex.
func unique(prefix string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// hookgateTable is the table of template.yaml under another name.
func hookgateTable(name string) provision.Table {
	return provision.Table{
		Name:         name,
		Attributes:   map[string]string{"pk": "S", "sk": "S", "gsi1pk": "S", "gsi1sk": "S"},
		HashKey:      "pk",
		RangeKey:     "sk",
		GSIs:         []provision.GSI{{Name: "gsi1", HashKey: "gsi1pk", RangeKey: "gsi1sk", Projection: "ALL"}},
		TTLAttribute: "ttl",
	}
}

func TestTablesCreatesTableWithGSIAndTTL(t *testing.T) {
	t.Parallel()
	db, c := dynamoClient(t), ctx(t)
	spec := hookgateTable(unique("prov-table"))
	for run := 1; run <= 2; run++ { // the second run finds everything in place
		if err := provision.Tables(c, db, []provision.Table{spec}); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
	}

	out, err := db.DescribeTable(c, &dynamodb.DescribeTableInput{TableName: aws.String(spec.Name)})
	if err != nil {
		t.Fatal(err)
	}
	tbl := out.Table
	if tbl.TableStatus != dbtypes.TableStatusActive {
		t.Errorf("status %s", tbl.TableStatus)
	}
	if got := keys(tbl.KeySchema); got != "pk HASH, sk RANGE" {
		t.Errorf("key schema %s", got)
	}
	if tbl.BillingModeSummary == nil || tbl.BillingModeSummary.BillingMode != dbtypes.BillingModePayPerRequest {
		t.Errorf("billing mode summary %+v, want PAY_PER_REQUEST", tbl.BillingModeSummary)
	}
	if len(tbl.GlobalSecondaryIndexes) != 1 {
		t.Fatalf("%d GSIs, want 1", len(tbl.GlobalSecondaryIndexes))
	}
	g := tbl.GlobalSecondaryIndexes[0]
	if aws.ToString(g.IndexName) != "gsi1" || keys(g.KeySchema) != "gsi1pk HASH, gsi1sk RANGE" ||
		g.Projection == nil || g.Projection.ProjectionType != dbtypes.ProjectionTypeAll || g.IndexStatus != dbtypes.IndexStatusActive {
		t.Errorf("gsi %s keys (%s) projection %+v status %s", aws.ToString(g.IndexName), keys(g.KeySchema), g.Projection, g.IndexStatus)
	}

	ttl, err := db.DescribeTimeToLive(c, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(spec.Name)})
	if err != nil {
		t.Fatal(err)
	}
	if d := ttl.TimeToLiveDescription; d == nil || d.TimeToLiveStatus != dbtypes.TimeToLiveStatusEnabled || aws.ToString(d.AttributeName) != "ttl" {
		t.Errorf("ttl %+v, want ENABLED on ttl", d)
	}

	// The index answers queries.
	_, err = db.PutItem(c, &dynamodb.PutItemInput{TableName: aws.String(spec.Name), Item: map[string]dbtypes.AttributeValue{
		"pk": &dbtypes.AttributeValueMemberS{Value: "p"}, "sk": &dbtypes.AttributeValueMemberS{Value: "s"},
		"gsi1pk": &dbtypes.AttributeValueMemberS{Value: "g"}, "gsi1sk": &dbtypes.AttributeValueMemberS{Value: "1"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	q, err := db.Query(c, &dynamodb.QueryInput{
		TableName: aws.String(spec.Name), IndexName: aws.String("gsi1"),
		KeyConditionExpression:    aws.String("gsi1pk = :g"),
		ExpressionAttributeValues: map[string]dbtypes.AttributeValue{":g": &dbtypes.AttributeValueMemberS{Value: "g"}},
	})
	if err != nil || q.Count != 1 {
		t.Fatalf("query gsi1: count %v, err %v", q, err)
	}
}

func keys(ks []dbtypes.KeySchemaElement) string {
	var parts []string
	for _, k := range ks {
		parts = append(parts, aws.ToString(k.AttributeName)+" "+string(k.KeyType))
	}
	return strings.Join(parts, ", ")
}

func TestTablesHashKeyOnlyWithoutTTL(t *testing.T) {
	t.Parallel()
	db, c := dynamoClient(t), ctx(t)
	spec := provision.Table{Name: unique("prov-hash"), Attributes: map[string]string{"id": "N"}, HashKey: "id"}
	if err := provision.Tables(c, db, []provision.Table{spec}); err != nil {
		t.Fatal(err)
	}
	out, err := db.DescribeTable(c, &dynamodb.DescribeTableInput{TableName: aws.String(spec.Name)})
	if err != nil {
		t.Fatal(err)
	}
	if got := keys(out.Table.KeySchema); got != "id HASH" {
		t.Errorf("key schema %s", got)
	}
	ttl, err := db.DescribeTimeToLive(c, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(spec.Name)})
	if err != nil {
		t.Fatal(err)
	}
	if d := ttl.TimeToLiveDescription; d != nil && d.TimeToLiveStatus != dbtypes.TimeToLiveStatusDisabled {
		t.Errorf("ttl %+v, want disabled", d)
	}
}

func TestTablesConcurrentRuns(t *testing.T) {
	t.Parallel()
	db, c := dynamoClient(t), ctx(t)
	spec := hookgateTable(unique("prov-race"))
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = provision.Tables(c, db, []provision.Table{spec})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("run %d: %v", i, err)
		}
	}
}

func TestTablesExistingTableWithOtherKeys(t *testing.T) {
	t.Parallel()
	db, c := dynamoClient(t), ctx(t)
	spec := hookgateTable(unique("prov-drift"))
	if err := provision.Tables(c, db, []provision.Table{spec}); err != nil {
		t.Fatal(err)
	}
	other := spec
	other.Attributes = map[string]string{"pk": "S", "gsi1pk": "S", "gsi1sk": "S"}
	other.RangeKey = ""
	err := provision.Tables(c, db, []provision.Table{other})
	if err == nil || !strings.Contains(err.Error(), "exists with key") {
		t.Fatalf("err = %v, want a key mismatch", err)
	}
	missing := spec
	missing.GSIs = append(missing.GSIs, provision.GSI{Name: "gsi2", HashKey: "gsi1sk"})
	err = provision.Tables(c, db, []provision.Table{missing})
	if err == nil || !strings.Contains(err.Error(), "without index gsi2") {
		t.Fatalf("err = %v, want a missing index", err)
	}
}

// streamOf returns the table's stream settings: view type ("" without an enabled stream) and ARN.
func streamOf(t *testing.T, c context.Context, db *dynamodb.Client, table string) (view, arn string) {
	t.Helper()
	out, err := db.DescribeTable(c, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatal(err)
	}
	if s := out.Table.StreamSpecification; s != nil && aws.ToBool(s.StreamEnabled) {
		view = string(s.StreamViewType)
	}
	return view, aws.ToString(out.Table.LatestStreamArn)
}

func TestTablesCreatesStream(t *testing.T) {
	t.Parallel()
	db, c := dynamoClient(t), ctx(t)
	spec := hookgateTable(unique("prov-stream"))
	spec.StreamViewType = "NEW_IMAGE"
	if err := provision.Tables(c, db, []provision.Table{spec}); err != nil {
		t.Fatal(err)
	}
	view, arn := streamOf(t, c, db, spec.Name)
	if view != "NEW_IMAGE" || !strings.Contains(arn, ":table/"+spec.Name+"/stream/") {
		t.Fatalf("stream view %q arn %q", view, arn)
	}
	got, err := provision.StreamARN(c, db, spec.Name)
	if err != nil || got != arn {
		t.Fatalf("StreamARN = %q, %v; want %q", got, err, arn)
	}
	// A second run keeps the stream: a new one would have a new ARN.
	if err := provision.Tables(c, db, []provision.Table{spec}); err != nil {
		t.Fatal(err)
	}
	if again, _ := provision.StreamARN(c, db, spec.Name); again != arn {
		t.Errorf("second run: stream %s, was %s", again, arn)
	}
	// Another view type is a mismatch, not a silent new stream.
	other := spec
	other.StreamViewType = "KEYS_ONLY"
	err = provision.Tables(c, db, []provision.Table{other})
	if err == nil || !strings.Contains(err.Error(), "exists with stream view type NEW_IMAGE, want KEYS_ONLY") {
		t.Errorf("err = %v, want a view type mismatch", err)
	}
	// A spec without a stream leaves the table's stream alone.
	none := spec
	none.StreamViewType = ""
	if err := provision.Tables(c, db, []provision.Table{none}); err != nil {
		t.Fatal(err)
	}
	if view, again := streamOf(t, c, db, spec.Name); view != "NEW_IMAGE" || again != arn {
		t.Errorf("spec without stream: view %q arn %s", view, again)
	}
}

func TestTablesEnablesStreamOnExistingTable(t *testing.T) {
	t.Parallel()
	db, c := dynamoClient(t), ctx(t)
	spec := hookgateTable(unique("prov-addstream"))
	if err := provision.Tables(c, db, []provision.Table{spec}); err != nil {
		t.Fatal(err)
	}
	if _, err := provision.StreamARN(c, db, spec.Name); err == nil || !strings.Contains(err.Error(), "no enabled stream") {
		t.Fatalf("StreamARN of a table without stream: %v", err)
	}
	// Concurrent runs (two `make dev`, or tests) all enable the same one stream.
	spec.StreamViewType = "NEW_AND_OLD_IMAGES"
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = provision.Tables(c, db, []provision.Table{spec})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("run %d: %v", i, err)
		}
	}
	view, arn := streamOf(t, c, db, spec.Name)
	if view != "NEW_AND_OLD_IMAGES" || arn == "" {
		t.Fatalf("stream view %q arn %q", view, arn)
	}
	if got, err := provision.StreamARN(c, db, spec.Name); err != nil || got != arn {
		t.Errorf("StreamARN = %q, %v; want %q", got, err, arn)
	}
	if _, err := provision.StreamARN(c, db, unique("prov-missing")); err == nil {
		t.Error("StreamARN of a missing table: no error")
	}
}

func TestTablesRejectsBadSpecs(t *testing.T) {
	t.Parallel()
	good := hookgateTable("t-good")
	cases := map[string]func(*provision.Table){
		"no name":     func(s *provision.Table) { s.Name = "" },
		"no hash key": func(s *provision.Table) { s.HashKey = "" },
		"bad type": func(s *provision.Table) {
			s.Attributes = map[string]string{"pk": "X", "sk": "S", "gsi1pk": "S", "gsi1sk": "S"}
		},
		"key without type": func(s *provision.Table) { s.RangeKey = "other" },
		"unused attribute": func(s *provision.Table) {
			s.Attributes = map[string]string{"pk": "S", "sk": "S", "gsi1pk": "S", "gsi1sk": "S", "x": "S"}
		},
		"include projection without attributes": func(s *provision.Table) {
			s.GSIs = []provision.GSI{{Name: "gsi1", HashKey: "gsi1pk", Projection: "INCLUDE"}}
		},
		"index without a key":  func(s *provision.Table) { s.GSIs = []provision.GSI{{Name: "gsi1"}} },
		"bad stream view type": func(s *provision.Table) { s.StreamViewType = "NEW" },
	}
	for name, mutate := range cases {
		spec := good
		spec.Attributes = good.Attributes
		mutate(&spec)
		// A nil client: validation fails before any call.
		if err := provision.Tables(context.Background(), nil, []provision.Table{spec}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// receiveOne long-polls for one message and returns it with its receive count, or nil.
func receiveOne(t *testing.T, c context.Context, q *sqs.Client, url string, wait int32) (*sqstypes.Message, int) {
	t.Helper()
	out, err := q.ReceiveMessage(c, &sqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(url),
		MaxNumberOfMessages:         1,
		WaitTimeSeconds:             wait,
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameApproximateReceiveCount},
	})
	if err != nil {
		t.Fatalf("receive from %s: %v", url, err)
	}
	if len(out.Messages) == 0 {
		return nil, 0
	}
	m := out.Messages[0]
	n, _ := strconv.Atoi(m.Attributes[string(sqstypes.MessageSystemAttributeNameApproximateReceiveCount)])
	return &m, n
}

func queueAttrs(t *testing.T, c context.Context, q *sqs.Client, url string) map[string]string {
	t.Helper()
	out, err := q.GetQueueAttributes(c, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll},
	})
	if err != nil {
		t.Fatalf("attributes of %s: %v", url, err)
	}
	return out.Attributes
}

func TestQueuesRedriveToDLQ(t *testing.T) {
	t.Parallel()
	const maxReceives = 3
	for _, fifo := range []bool{true, false} {
		name := "standard"
		if fifo {
			name = "fifo"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			q, c := sqsClient(t), ctx(t)
			suffix := ""
			if fifo {
				suffix = ".fifo"
			}
			main, dlq := unique("prov-main")+suffix, unique("prov-dlq")+suffix
			// The FIFO queue gives messages back with ChangeMessageVisibility 0; the standard one
			// lets a 1 s visibility timeout expire.
			visibility := 0
			if !fifo {
				visibility = 1
			}
			infos, err := provision.Queues(c, q, []provision.Queue{
				{Name: main, Fifo: fifo, VisibilityTimeout: visibility, DLQ: dlq, MaxReceiveCount: maxReceives},
				{Name: dlq, Fifo: fifo},
			})
			if err != nil {
				t.Fatal(err)
			}
			in := &sqs.SendMessageInput{QueueUrl: aws.String(infos[main].URL), MessageBody: aws.String("hello " + name)}
			if fifo {
				in.MessageGroupId, in.MessageDeduplicationId = aws.String("thread-1"), aws.String("msg-1")
			}
			if _, err := q.SendMessage(c, in); err != nil {
				t.Fatal(err)
			}

			for i := 1; i <= maxReceives; i++ {
				m, n := receiveOne(t, c, q, infos[main].URL, 5)
				if m == nil {
					t.Fatalf("receive %d: no message", i)
				}
				if n != i {
					t.Errorf("receive %d: ApproximateReceiveCount %d", i, n)
				}
				if fifo {
					if _, err := q.ChangeMessageVisibility(c, &sqs.ChangeMessageVisibilityInput{
						QueueUrl: aws.String(infos[main].URL), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0,
					}); err != nil {
						t.Fatal(err)
					}
				}
			}
			// Receive number maxReceives+1 finds the message over the limit and moves it instead.
			if m, n := receiveOne(t, c, q, infos[main].URL, 1); m != nil {
				t.Fatalf("receive %d: got the message again (count %d), want it in the DLQ", maxReceives+1, n)
			}
			m, n := receiveOne(t, c, q, infos[dlq].URL, 5)
			if m == nil {
				t.Fatal("no message in the DLQ")
			}
			if got := aws.ToString(m.Body); got != "hello "+name {
				t.Errorf("DLQ body %q", got)
			}
			t.Logf("DLQ receive: ApproximateReceiveCount %d after %d receives from the main queue", n, maxReceives)
			a := queueAttrs(t, c, q, infos[main].URL)
			if a["ApproximateNumberOfMessages"] != "0" || a["ApproximateNumberOfMessagesNotVisible"] != "0" {
				t.Errorf("main queue still holds the message: %v", a)
			}
		})
	}
}

// hookgateQueues are the queues of template.yaml under other names, users before their DLQs.
func hookgateQueues() []provision.Queue {
	inbound, inboundDLQ := unique("prov-inbound")+".fifo", unique("prov-inbound-dlq")+".fifo"
	delivery, deliveryDLQ := unique("prov-delivery"), unique("prov-delivery-dlq")
	return []provision.Queue{
		{Name: inbound, Fifo: true, VisibilityTimeout: 180, RetentionPeriod: 345600, DLQ: inboundDLQ, MaxReceiveCount: 5},
		{Name: inboundDLQ, Fifo: true, RetentionPeriod: 1209600},
		{Name: delivery, VisibilityTimeout: 180, RetentionPeriod: 345600, DelaySeconds: 2, DLQ: deliveryDLQ, MaxReceiveCount: 5},
		{Name: deliveryDLQ, RetentionPeriod: 1209600},
		{Name: unique("prov-cbd") + ".fifo", Fifo: true, ContentBasedDedup: true},
	}
}

func TestQueuesAttributesAsCreated(t *testing.T) {
	t.Parallel()
	q, c := sqsClient(t), ctx(t)
	specs := hookgateQueues()
	infos, err := provision.Queues(c, q, specs)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != len(specs) {
		t.Fatalf("%d infos for %d queues", len(infos), len(specs))
	}
	for _, s := range specs {
		info := infos[s.Name]
		if info.Name != s.Name || !strings.HasSuffix(info.URL, "/"+s.Name) || !strings.HasSuffix(info.ARN, ":"+s.Name) {
			t.Errorf("%s: info %+v", s.Name, info)
		}
		a := queueAttrs(t, c, q, info.URL)
		t.Logf("%s: url %s attributes %v", s.Name, info.URL, a)
		if a["QueueArn"] != info.ARN {
			t.Errorf("%s: QueueArn %s, info %s", s.Name, a["QueueArn"], info.ARN)
		}
		want := map[string]string{
			"VisibilityTimeout":      "30",
			"MessageRetentionPeriod": "345600",
			"DelaySeconds":           "0",
		}
		if s.VisibilityTimeout != 0 {
			want["VisibilityTimeout"] = strconv.Itoa(s.VisibilityTimeout)
		}
		if s.RetentionPeriod != 0 {
			want["MessageRetentionPeriod"] = strconv.Itoa(s.RetentionPeriod)
		}
		if s.DelaySeconds != 0 {
			want["DelaySeconds"] = strconv.Itoa(s.DelaySeconds)
		}
		if s.Fifo {
			want["FifoQueue"] = "true"
			want["ContentBasedDeduplication"] = strconv.FormatBool(s.ContentBasedDedup)
		}
		for k, v := range want {
			if a[k] != v {
				t.Errorf("%s: %s = %q, want %q", s.Name, k, a[k], v)
			}
		}
		if !s.Fifo && a["FifoQueue"] == "true" {
			t.Errorf("%s: standard queue reports FifoQueue true", s.Name)
		}
		if s.DLQ == "" {
			if a["RedrivePolicy"] != "" {
				t.Errorf("%s: unexpected RedrivePolicy %s", s.Name, a["RedrivePolicy"])
			}
			continue
		}
		var policy struct {
			DeadLetterTargetArn string
			MaxReceiveCount     json.Number
		}
		if err := json.Unmarshal([]byte(a["RedrivePolicy"]), &policy); err != nil {
			t.Fatalf("%s: RedrivePolicy %q: %v", s.Name, a["RedrivePolicy"], err)
		}
		if policy.DeadLetterTargetArn != infos[s.DLQ].ARN || policy.MaxReceiveCount.String() != strconv.Itoa(s.MaxReceiveCount) {
			t.Errorf("%s: RedrivePolicy %s, want DLQ %s after %d receives", s.Name, a["RedrivePolicy"], infos[s.DLQ].ARN, s.MaxReceiveCount)
		}
	}

	// A second run looks the queues up and returns the same URLs and ARNs.
	again, err := provision.Queues(c, q, specs)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again, infos) {
		t.Errorf("second run:\n%v\nfirst run:\n%v", again, infos)
	}
}

func TestQueuesRejectsBadSpecs(t *testing.T) {
	t.Parallel()
	cases := map[string][]provision.Queue{
		"fifo name without fifo":     {{Name: "a.fifo"}},
		"fifo without fifo name":     {{Name: "a", Fifo: true}},
		"content dedup on standard":  {{Name: "a", ContentBasedDedup: true}},
		"unknown dlq":                {{Name: "a", DLQ: "b", MaxReceiveCount: 3}},
		"dlq without receive count":  {{Name: "a", DLQ: "b"}, {Name: "b"}},
		"receive count without dlq":  {{Name: "a", MaxReceiveCount: 3}},
		"standard dlq of a fifo":     {{Name: "a.fifo", Fifo: true, DLQ: "b", MaxReceiveCount: 3}, {Name: "b"}},
		"own dlq":                    {{Name: "a", DLQ: "a", MaxReceiveCount: 3}},
		"dlq cycle":                  {{Name: "a", DLQ: "b", MaxReceiveCount: 3}, {Name: "b", DLQ: "a", MaxReceiveCount: 3}},
		"declared twice":             {{Name: "a"}, {Name: "a"}},
		"retention below a minute":   {{Name: "a", RetentionPeriod: 59}},
		"visibility over twelve hrs": {{Name: "a", VisibilityTimeout: 43201}},
		"delay over 15 min":          {{Name: "a", DelaySeconds: 901}},
	}
	for name, specs := range cases {
		// A nil client: validation fails before any call.
		if _, err := provision.Queues(context.Background(), nil, specs); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
