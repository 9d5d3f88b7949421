package provision_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/hookgate/hookgate/local/provision"
	"github.com/hookgate/hookgate/local/template"
)

const specsTemplate = `
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - {AttributeName: pk, AttributeType: S}
        - {AttributeName: sk, AttributeType: S}
        - {AttributeName: gsi1pk, AttributeType: S}
        - {AttributeName: gsi1sk, AttributeType: S}
      KeySchema:
        - {AttributeName: pk, KeyType: HASH}
        - {AttributeName: sk, KeyType: RANGE}
      GlobalSecondaryIndexes:
        - IndexName: gsi1
          KeySchema:
            - {AttributeName: gsi1pk, KeyType: HASH}
            - {AttributeName: gsi1sk, KeyType: RANGE}
          Projection: {ProjectionType: ALL}
      TimeToLiveSpecification: {AttributeName: ttl, Enabled: true}
      StreamSpecification: {StreamViewType: NEW_IMAGE}
  InboundQueue:
    Type: AWS::SQS::Queue
    Properties:
      FifoQueue: true
      VisibilityTimeout: 180
      MessageRetentionPeriod: 345600
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt InboundDLQ.Arn
        maxReceiveCount: 5
  InboundDLQ:
    Type: AWS::SQS::Queue
    Properties:
      FifoQueue: true
      MessageRetentionPeriod: 1209600
  DeliveryQueue:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 360
      DelaySeconds: 2
`

func TestSpecs(t *testing.T) {
	tpl, err := template.Parse([]byte(specsTemplate))
	if err != nil {
		t.Fatal(err)
	}
	tables, queues := provision.Specs(tpl, "p-", 0)
	want := hookgateTable("p-Table")
	want.StreamViewType = "NEW_IMAGE"
	if !reflect.DeepEqual(tables, []provision.Table{want}) {
		t.Errorf("tables %+v\nwant %+v", tables, want)
	}
	wantQueues := []provision.Queue{ // sorted by logical id; the template fills in SQS's defaults
		{Name: "p-DeliveryQueue", VisibilityTimeout: 360, RetentionPeriod: 345600, DelaySeconds: 2},
		{Name: "p-InboundDLQ.fifo", Fifo: true, VisibilityTimeout: 30, RetentionPeriod: 1209600},
		{Name: "p-InboundQueue.fifo", Fifo: true, VisibilityTimeout: 180, RetentionPeriod: 345600, DLQ: "p-InboundDLQ.fifo", MaxReceiveCount: 5},
	}
	if !reflect.DeepEqual(queues, wantQueues) {
		t.Errorf("queues %+v\nwant %+v", queues, wantQueues)
	}

	// A visibility replaces every queue's, in whole seconds and at least one.
	for vis, want := range map[time.Duration]int{1500 * time.Millisecond: 1, 10 * time.Millisecond: 1, time.Minute: 60} {
		_, queues := provision.Specs(tpl, "p-", vis)
		for _, q := range queues {
			if q.VisibilityTimeout != want {
				t.Errorf("visibility %s: %s has %d s, want %d", vis, q.Name, q.VisibilityTimeout, want)
			}
		}
	}
}
