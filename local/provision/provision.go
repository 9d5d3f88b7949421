// Package provision creates the DynamoDB tables and SQS queues a stack declares, idempotently, on
// whatever endpoints the clients point at: local emulators for `make dev` and the tests, or AWS.
package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
)

// Table is a DynamoDB table with on-demand billing.
type Table struct {
	Name string
	// Attributes are the key attributes of the table and its indexes: name → S, N or B.
	Attributes map[string]string
	// HashKey is required; RangeKey is optional.
	HashKey, RangeKey string
	GSIs              []GSI
	// TTLAttribute, when set, is the attribute DynamoDB's time to live reads.
	TTLAttribute string
	// StreamViewType, when set, enables the table's stream with that view: NEW_IMAGE,
	// OLD_IMAGE, NEW_AND_OLD_IMAGES or KEYS_ONLY. StreamARN returns the stream's ARN.
	StreamViewType string
}

// GSI is a global secondary index. Projection is ALL (also when empty) or KEYS_ONLY.
type GSI struct {
	Name, HashKey, RangeKey, Projection string
	NonKeyAttributes                    []string // the attributes an INCLUDE projection adds
}

// Queue is an SQS queue. Zero VisibilityTimeout, RetentionPeriod and DelaySeconds leave SQS's
// defaults (30 s, 4 days, 0 s).
type Queue struct {
	// Name must end in .fifo exactly when Fifo is set.
	Name                    string
	Fifo, ContentBasedDedup bool
	// VisibilityTimeout, RetentionPeriod and DelaySeconds are in seconds.
	VisibilityTimeout, RetentionPeriod, DelaySeconds int
	// DLQ is the Name of another queue in the same call, or "". A FIFO queue needs a FIFO DLQ.
	DLQ string
	// MaxReceiveCount is how many receives move a message to the DLQ; required with DLQ.
	MaxReceiveCount int
}

// QueueInfo is where a provisioned queue is.
type QueueInfo struct {
	Name, URL, ARN string
}

// DynamoAPI is the part of *dynamodb.Client that Tables uses.
type DynamoAPI interface {
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	DescribeTimeToLive(ctx context.Context, in *dynamodb.DescribeTimeToLiveInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTimeToLiveOutput, error)
	UpdateTimeToLive(ctx context.Context, in *dynamodb.UpdateTimeToLiveInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error)
	UpdateTable(ctx context.Context, in *dynamodb.UpdateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateTableOutput, error)
}

// SQSAPI is the part of *sqs.Client that Queues uses.
type SQSAPI interface {
	CreateQueue(ctx context.Context, in *sqs.CreateQueueInput, optFns ...func(*sqs.Options)) (*sqs.CreateQueueOutput, error)
	GetQueueUrl(ctx context.Context, in *sqs.GetQueueUrlInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error)
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
}

// Tables creates each table that does not exist yet, waits until it and its indexes are ACTIVE and
// enables its TTL and stream. An existing table is checked against the spec (keys, indexes, stream
// view type) but not changed, except that a missing TTL or stream is enabled.
func Tables(ctx context.Context, db DynamoAPI, tables []Table) error {
	for _, t := range tables {
		if err := t.validate(); err != nil {
			return err
		}
	}
	for _, t := range tables {
		if err := ensureTable(ctx, db, t); err != nil {
			return err
		}
	}
	return nil
}

func (t Table) validate() error {
	if t.Name == "" {
		return errors.New("table: empty name")
	}
	if t.HashKey == "" {
		return fmt.Errorf("table %s: no hash key", t.Name)
	}
	switch dbtypes.StreamViewType(t.StreamViewType) {
	case "", dbtypes.StreamViewTypeNewImage, dbtypes.StreamViewTypeOldImage, dbtypes.StreamViewTypeNewAndOldImages, dbtypes.StreamViewTypeKeysOnly:
	default:
		return fmt.Errorf("table %s: stream view type %q, want NEW_IMAGE, OLD_IMAGE, NEW_AND_OLD_IMAGES or KEYS_ONLY", t.Name, t.StreamViewType)
	}
	for name, typ := range t.Attributes {
		if typ != "S" && typ != "N" && typ != "B" {
			return fmt.Errorf("table %s: attribute %s has type %q, want S, N or B", t.Name, name, typ)
		}
	}
	keys := []string{t.HashKey, t.RangeKey}
	for _, g := range t.GSIs {
		if g.Name == "" || g.HashKey == "" {
			return fmt.Errorf("table %s: index %q needs a name and a hash key", t.Name, g.Name)
		}
		switch p := g.Projection; {
		case p != "" && p != "ALL" && p != "KEYS_ONLY" && p != "INCLUDE":
			return fmt.Errorf("table %s: index %s: projection %q unsupported, want ALL, KEYS_ONLY or INCLUDE", t.Name, g.Name, p)
		case (p == "INCLUDE") != (len(g.NonKeyAttributes) > 0):
			return fmt.Errorf("table %s: index %s: NonKeyAttributes go with an INCLUDE projection, and only with one", t.Name, g.Name)
		}
		keys = append(keys, g.HashKey, g.RangeKey)
	}
	used := map[string]bool{}
	for _, k := range keys {
		if k == "" {
			continue
		}
		if _, ok := t.Attributes[k]; !ok {
			return fmt.Errorf("table %s: key %s has no attribute type", t.Name, k)
		}
		used[k] = true
	}
	for name := range t.Attributes {
		if !used[name] { // DynamoDB refuses attribute definitions that no key uses
			return fmt.Errorf("table %s: attribute %s is not a key of the table or an index", t.Name, name)
		}
	}
	return nil
}

func keySchema(hash, rng string) []dbtypes.KeySchemaElement {
	ks := []dbtypes.KeySchemaElement{{AttributeName: aws.String(hash), KeyType: dbtypes.KeyTypeHash}}
	if rng != "" {
		ks = append(ks, dbtypes.KeySchemaElement{AttributeName: aws.String(rng), KeyType: dbtypes.KeyTypeRange})
	}
	return ks
}

func (t Table) createInput() *dynamodb.CreateTableInput {
	in := &dynamodb.CreateTableInput{
		TableName:   aws.String(t.Name),
		BillingMode: dbtypes.BillingModePayPerRequest,
		KeySchema:   keySchema(t.HashKey, t.RangeKey),
	}
	if t.StreamViewType != "" {
		in.StreamSpecification = t.streamSpec()
	}
	for name, typ := range t.Attributes {
		in.AttributeDefinitions = append(in.AttributeDefinitions, dbtypes.AttributeDefinition{
			AttributeName: aws.String(name), AttributeType: dbtypes.ScalarAttributeType(typ),
		})
	}
	for _, g := range t.GSIs {
		proj := dbtypes.ProjectionTypeAll
		if g.Projection != "" {
			proj = dbtypes.ProjectionType(g.Projection)
		}
		in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, dbtypes.GlobalSecondaryIndex{
			IndexName:  aws.String(g.Name),
			KeySchema:  keySchema(g.HashKey, g.RangeKey),
			Projection: &dbtypes.Projection{ProjectionType: proj, NonKeyAttributes: g.NonKeyAttributes},
		})
	}
	return in
}

func (t Table) streamSpec() *dbtypes.StreamSpecification {
	return &dbtypes.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: dbtypes.StreamViewType(t.StreamViewType)}
}

func ensureTable(ctx context.Context, db DynamoAPI, t Table) error {
	_, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(t.Name)})
	var notFound *dbtypes.ResourceNotFoundException
	switch {
	case errors.As(err, &notFound):
		_, err = db.CreateTable(ctx, t.createInput())
		var inUse *dbtypes.ResourceInUseException
		if err != nil && !errors.As(err, &inUse) { // in use: someone else created it meanwhile
			return fmt.Errorf("create table %s: %w", t.Name, err)
		}
	case err != nil:
		return fmt.Errorf("describe table %s: %w", t.Name, err)
	}
	desc, err := waitActive(ctx, db, t.Name)
	if err != nil {
		return err
	}
	if err := t.matches(desc); err != nil {
		return err
	}
	if t.StreamViewType != "" {
		if err := ensureStream(ctx, db, t, desc); err != nil {
			return err
		}
	}
	if t.TTLAttribute != "" {
		if err := ensureTTL(ctx, db, t.Name, t.TTLAttribute); err != nil {
			return err
		}
	}
	return nil
}

// waitActive polls DescribeTable until the table and all its indexes are ACTIVE.
func waitActive(ctx context.Context, db DynamoAPI, name string) (*dbtypes.TableDescription, error) {
	delay := 100 * time.Millisecond
	for {
		out, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		if err != nil {
			return nil, fmt.Errorf("wait for table %s: %w", name, err)
		}
		status := string(out.Table.TableStatus)
		if out.Table.TableStatus == dbtypes.TableStatusActive {
			for _, g := range out.Table.GlobalSecondaryIndexes {
				if g.IndexStatus != dbtypes.IndexStatusActive {
					status = fmt.Sprintf("index %s %s", aws.ToString(g.IndexName), g.IndexStatus)
				}
			}
			if status == string(dbtypes.TableStatusActive) {
				return out.Table, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for table %s (%s): %w", name, status, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(delay*2, 2*time.Second)
	}
}

// matches checks an existing table has the keys and indexes of the spec. It does not change a
// table: a mismatch needs a human (or a fresh local database).
func (t Table) matches(d *dbtypes.TableDescription) error {
	if got, want := keyString(d.KeySchema), keyString(keySchema(t.HashKey, t.RangeKey)); got != want {
		return fmt.Errorf("table %s exists with key %s, want %s", t.Name, got, want)
	}
	have := map[string]string{}
	for _, g := range d.GlobalSecondaryIndexes {
		have[aws.ToString(g.IndexName)] = keyString(g.KeySchema)
	}
	for _, g := range t.GSIs {
		got, ok := have[g.Name]
		if !ok {
			return fmt.Errorf("table %s exists without index %s", t.Name, g.Name)
		}
		if want := keyString(keySchema(g.HashKey, g.RangeKey)); got != want {
			return fmt.Errorf("table %s: index %s exists with key %s, want %s", t.Name, g.Name, got, want)
		}
	}
	return nil
}

func keyString(ks []dbtypes.KeySchemaElement) string {
	parts := make([]string, 0, len(ks))
	for _, k := range ks {
		parts = append(parts, aws.ToString(k.AttributeName)+" "+string(k.KeyType))
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// ensureStream enables the stream of an existing table that has none. A stream with another view
// type is an error: changing it means a new stream, and a consumer of the old one would lose its
// place, so that needs a human (or a fresh local database).
func ensureStream(ctx context.Context, db DynamoAPI, t Table, desc *dbtypes.TableDescription) error {
	if enabled, err := t.stream(desc); enabled || err != nil {
		return err
	}
	// A concurrent run may enable it between our DescribeTable and UpdateTable: DynamoDB then
	// refuses the update (ValidationException, or ResourceInUseException while the table is
	// UPDATING). Whatever the outcome, the table's state afterwards decides.
	_, err := db.UpdateTable(ctx, &dynamodb.UpdateTableInput{TableName: aws.String(t.Name), StreamSpecification: t.streamSpec()})
	desc, werr := waitActive(ctx, db, t.Name)
	if werr != nil {
		if err != nil {
			return fmt.Errorf("enable stream on table %s: %w", t.Name, err)
		}
		return werr
	}
	enabled, merr := t.stream(desc)
	switch {
	case merr != nil:
		return merr
	case !enabled && err != nil:
		return fmt.Errorf("enable stream on table %s: %w", t.Name, err)
	case !enabled:
		return fmt.Errorf("enable stream on table %s: the table still has no stream", t.Name)
	}
	return nil
}

// stream reports whether the table has an enabled stream, and fails when that stream's view
// type is not the spec's.
func (t Table) stream(d *dbtypes.TableDescription) (bool, error) {
	spec := d.StreamSpecification
	if spec == nil || !aws.ToBool(spec.StreamEnabled) || aws.ToString(d.LatestStreamArn) == "" {
		return false, nil
	}
	if got := string(spec.StreamViewType); got != t.StreamViewType {
		return true, fmt.Errorf("table %s exists with stream view type %s, want %s", t.Name, got, t.StreamViewType)
	}
	return true, nil
}

// StreamARN returns the ARN of the table's current stream (DescribeTable's LatestStreamArn). It
// fails when the table has no enabled stream.
func StreamARN(ctx context.Context, db DynamoAPI, table string) (string, error) {
	out, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		return "", fmt.Errorf("stream of table %s: %w", table, err)
	}
	spec := out.Table.StreamSpecification
	arn := aws.ToString(out.Table.LatestStreamArn)
	if spec == nil || !aws.ToBool(spec.StreamEnabled) || arn == "" {
		return "", fmt.Errorf("stream of table %s: the table has no enabled stream", table)
	}
	return arn, nil
}

func ensureTTL(ctx context.Context, db DynamoAPI, table, attr string) error {
	out, err := db.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(table)})
	if err != nil {
		return fmt.Errorf("describe ttl of table %s: %w", table, err)
	}
	if d := out.TimeToLiveDescription; d != nil {
		switch d.TimeToLiveStatus {
		case dbtypes.TimeToLiveStatusEnabled, dbtypes.TimeToLiveStatusEnabling:
			if got := aws.ToString(d.AttributeName); got != attr {
				return fmt.Errorf("table %s: ttl is on attribute %s, want %s", table, got, attr)
			}
			return nil
		}
	}
	_, err = db.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName:               aws.String(table),
		TimeToLiveSpecification: &dbtypes.TimeToLiveSpecification{AttributeName: aws.String(attr), Enabled: aws.Bool(true)},
	})
	if err != nil && !ttlAlreadyEnabled(err) {
		return fmt.Errorf("enable ttl on table %s: %w", table, err)
	}
	return nil
}

// ttlAlreadyEnabled recognizes DynamoDB's answer to enabling TTL twice, which a concurrent
// provisioning run can provoke between our DescribeTimeToLive and UpdateTimeToLive.
func ttlAlreadyEnabled(err error) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode() == "ValidationException" &&
		strings.Contains(strings.ToLower(apiErr.ErrorMessage()), "already enabled")
}

// Queues creates each queue that does not exist yet, dead-letter queues before the queues that use
// them, and returns every queue's URL and ARN by Name. Existing queues are looked up, not changed.
func Queues(ctx context.Context, q SQSAPI, queues []Queue) (map[string]QueueInfo, error) {
	order, err := queueOrder(queues)
	if err != nil {
		return nil, err
	}
	infos := make(map[string]QueueInfo, len(queues))
	for _, qu := range order {
		var dlqARN string
		if qu.DLQ != "" {
			dlqARN = infos[qu.DLQ].ARN
		}
		info, err := ensureQueue(ctx, q, qu, dlqARN)
		if err != nil {
			return nil, err
		}
		infos[qu.Name] = info
	}
	return infos, nil
}

// queueOrder validates the specs and orders them so every DLQ comes before its users.
func queueOrder(queues []Queue) ([]Queue, error) {
	byName := make(map[string]Queue, len(queues))
	for _, qu := range queues {
		if err := qu.validate(); err != nil {
			return nil, err
		}
		if _, dup := byName[qu.Name]; dup {
			return nil, fmt.Errorf("queue %s: declared twice", qu.Name)
		}
		byName[qu.Name] = qu
	}
	for _, qu := range queues {
		if qu.DLQ == "" {
			continue
		}
		dlq, ok := byName[qu.DLQ]
		if !ok {
			return nil, fmt.Errorf("queue %s: dead-letter queue %s is not in the same call", qu.Name, qu.DLQ)
		}
		if dlq.Fifo != qu.Fifo {
			return nil, fmt.Errorf("queue %s: dead-letter queue %s must be FIFO exactly when the queue is", qu.Name, qu.DLQ)
		}
	}
	const (
		visiting = 1
		done     = 2
	)
	state := map[string]int{}
	order := make([]Queue, 0, len(queues))
	var visit func(name string) error
	visit = func(name string) error {
		switch state[name] {
		case done:
			return nil
		case visiting:
			return fmt.Errorf("queue %s: dead-letter queues form a cycle", name)
		}
		state[name] = visiting
		if dlq := byName[name].DLQ; dlq != "" {
			if err := visit(dlq); err != nil {
				return err
			}
		}
		state[name] = done
		order = append(order, byName[name])
		return nil
	}
	for _, qu := range queues {
		if err := visit(qu.Name); err != nil {
			return nil, err
		}
	}
	return order, nil
}

func (qu Queue) validate() error {
	if qu.Name == "" {
		return errors.New("queue: empty name")
	}
	if strings.HasSuffix(qu.Name, ".fifo") != qu.Fifo {
		return fmt.Errorf("queue %s: a name ends in .fifo exactly when the queue is FIFO", qu.Name)
	}
	if qu.ContentBasedDedup && !qu.Fifo {
		return fmt.Errorf("queue %s: content-based deduplication needs a FIFO queue", qu.Name)
	}
	if qu.DLQ != "" && (qu.MaxReceiveCount < 1 || qu.MaxReceiveCount > 1000) {
		return fmt.Errorf("queue %s: max receive count %d, want 1 to 1000 with a dead-letter queue", qu.Name, qu.MaxReceiveCount)
	}
	if qu.DLQ == "" && qu.MaxReceiveCount != 0 {
		return fmt.Errorf("queue %s: max receive count without a dead-letter queue", qu.Name)
	}
	if qu.DLQ == qu.Name {
		return fmt.Errorf("queue %s: is its own dead-letter queue", qu.Name)
	}
	if qu.VisibilityTimeout < 0 || qu.VisibilityTimeout > 43200 {
		return fmt.Errorf("queue %s: visibility timeout %d s, want 0 to 43200", qu.Name, qu.VisibilityTimeout)
	}
	if qu.RetentionPeriod != 0 && (qu.RetentionPeriod < 60 || qu.RetentionPeriod > 1209600) {
		return fmt.Errorf("queue %s: retention period %d s, want 60 to 1209600", qu.Name, qu.RetentionPeriod)
	}
	if qu.DelaySeconds < 0 || qu.DelaySeconds > 900 {
		return fmt.Errorf("queue %s: delay %d s, want 0 to 900", qu.Name, qu.DelaySeconds)
	}
	return nil
}

// redrivePolicy is SQS's RedrivePolicy attribute, a JSON document in a string.
type redrivePolicy struct {
	DeadLetterTargetArn string `json:"deadLetterTargetArn"`
	MaxReceiveCount     int    `json:"maxReceiveCount"`
}

// attributes are the CreateQueue attributes of the spec; dlqARN is the ARN of its DLQ, if any.
func (qu Queue) attributes(dlqARN string) (map[string]string, error) {
	attrs := map[string]string{}
	if qu.Fifo {
		attrs[string(sqstypes.QueueAttributeNameFifoQueue)] = "true"
		attrs[string(sqstypes.QueueAttributeNameContentBasedDeduplication)] = strconv.FormatBool(qu.ContentBasedDedup)
	}
	if qu.VisibilityTimeout != 0 {
		attrs[string(sqstypes.QueueAttributeNameVisibilityTimeout)] = strconv.Itoa(qu.VisibilityTimeout)
	}
	if qu.RetentionPeriod != 0 {
		attrs[string(sqstypes.QueueAttributeNameMessageRetentionPeriod)] = strconv.Itoa(qu.RetentionPeriod)
	}
	if qu.DelaySeconds != 0 {
		attrs[string(sqstypes.QueueAttributeNameDelaySeconds)] = strconv.Itoa(qu.DelaySeconds)
	}
	if qu.DLQ != "" {
		if dlqARN == "" {
			return nil, fmt.Errorf("queue %s: no ARN for dead-letter queue %s", qu.Name, qu.DLQ)
		}
		policy, err := json.Marshal(redrivePolicy{DeadLetterTargetArn: dlqARN, MaxReceiveCount: qu.MaxReceiveCount})
		if err != nil {
			return nil, fmt.Errorf("queue %s: redrive policy: %w", qu.Name, err)
		}
		attrs[string(sqstypes.QueueAttributeNameRedrivePolicy)] = string(policy)
	}
	return attrs, nil
}

func ensureQueue(ctx context.Context, q SQSAPI, qu Queue, dlqARN string) (QueueInfo, error) {
	var url string
	out, err := q.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(qu.Name)})
	switch {
	case err == nil:
		url = aws.ToString(out.QueueUrl)
	case queueMissing(err):
		attrs, err := qu.attributes(dlqARN)
		if err != nil {
			return QueueInfo{}, err
		}
		created, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(qu.Name), Attributes: attrs})
		if err != nil {
			return QueueInfo{}, fmt.Errorf("create queue %s: %w", qu.Name, err)
		}
		url = aws.ToString(created.QueueUrl)
	default:
		return QueueInfo{}, fmt.Errorf("get url of queue %s: %w", qu.Name, err)
	}
	attrs, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return QueueInfo{}, fmt.Errorf("get arn of queue %s: %w", qu.Name, err)
	}
	arn := attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]
	if arn == "" {
		return QueueInfo{}, fmt.Errorf("get arn of queue %s: no QueueArn attribute", qu.Name)
	}
	return QueueInfo{Name: qu.Name, URL: url, ARN: arn}, nil
}

// queueMissing recognizes GetQueueUrl's "no such queue", by type or, from emulators speaking the
// query-compatible JSON protocol, by its legacy code.
func queueMissing(err error) bool {
	var missing *sqstypes.QueueDoesNotExist
	if errors.As(err, &missing) {
		return true
	}
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) &&
		(apiErr.ErrorCode() == "AWS.SimpleQueueService.NonExistentQueue" || apiErr.ErrorCode() == "QueueDoesNotExist")
}
