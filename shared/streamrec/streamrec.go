// Package streamrec turns DynamoDB Streams records (the SDK's types) into the records a Lambda
// function gets from a stream event source (aws-lambda-go's events): what local mode's stream
// event source sends, and what the FanoutDLQ replay reads back from the stream.
package streamrec

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
)

// Defaults for what a stream record may leave out; DynamoDB sets both.
const (
	eventSource  = "aws:dynamodb"
	eventVersion = "1.1"
)

// Record turns a stream record into the record Lambda sends to the function.
func Record(r types.Record, streamARN, region string) (events.DynamoDBEventRecord, error) {
	if r.Dynamodb == nil {
		return events.DynamoDBEventRecord{}, errors.New("stream record without dynamodb")
	}
	d := r.Dynamodb
	ev := events.DynamoDBEventRecord{
		AWSRegion:      region,
		EventID:        aws.ToString(r.EventID),
		EventName:      string(r.EventName),
		EventSource:    aws.ToString(r.EventSource),
		EventVersion:   aws.ToString(r.EventVersion),
		EventSourceArn: streamARN,
		Change: events.DynamoDBStreamRecord{
			SequenceNumber: aws.ToString(d.SequenceNumber),
			SizeBytes:      aws.ToInt64(d.SizeBytes),
			StreamViewType: string(d.StreamViewType),
		},
	}
	if ev.EventSource == "" {
		ev.EventSource = eventSource
	}
	if ev.EventVersion == "" {
		ev.EventVersion = eventVersion
	}
	if d.ApproximateCreationDateTime != nil {
		ev.Change.ApproximateCreationDateTime = events.SecondsEpochTime{Time: *d.ApproximateCreationDateTime}
	} else {
		// The field is always in Lambda's event (omitempty does not drop a struct).
		ev.Change.ApproximateCreationDateTime = events.SecondsEpochTime{Time: time.Now().Truncate(time.Second)}
	}
	if id := r.UserIdentity; id != nil {
		ev.UserIdentity = &events.DynamoDBUserIdentity{Type: aws.ToString(id.Type), PrincipalID: aws.ToString(id.PrincipalId)}
	}
	var err error
	if ev.Change.Keys, err = convertImage(d.Keys); err != nil {
		return ev, fmt.Errorf("record %s: Keys: %w", ev.Change.SequenceNumber, err)
	}
	if ev.Change.NewImage, err = convertImage(d.NewImage); err != nil {
		return ev, fmt.Errorf("record %s: NewImage: %w", ev.Change.SequenceNumber, err)
	}
	if ev.Change.OldImage, err = convertImage(d.OldImage); err != nil {
		return ev, fmt.Errorf("record %s: OldImage: %w", ev.Change.SequenceNumber, err)
	}
	return ev, nil
}

// convertImage converts an item image; an absent image stays nil (and out of the JSON).
func convertImage(img map[string]types.AttributeValue) (map[string]events.DynamoDBAttributeValue, error) {
	if img == nil {
		return nil, nil
	}
	return convertMap(img)
}

func convertMap(m map[string]types.AttributeValue) (map[string]events.DynamoDBAttributeValue, error) {
	out := make(map[string]events.DynamoDBAttributeValue, len(m))
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	sort.Strings(names) // the first error is the same on every run
	for _, name := range names {
		v, err := convertValue(m[name])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out[name] = v
	}
	return out, nil
}

// convertValue converts a DynamoDB Streams attribute value into the one a Lambda event
// holds, which encodes as DynamoDB's JSON ({"S":"x"}, {"N":"1"}, {"B":"<base64>"}, {"SS":[...]},
// {"NS":[...]}, {"BS":[...]}, {"M":{...}}, {"L":[...]}, {"NULL":true}, {"BOOL":true}). Empty
// lists, maps, sets and binaries encode as [], {} and "", never null.
func convertValue(v types.AttributeValue) (events.DynamoDBAttributeValue, error) {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return events.NewStringAttribute(v.Value), nil
	case *types.AttributeValueMemberN:
		return events.NewNumberAttribute(v.Value), nil
	case *types.AttributeValueMemberB:
		return events.NewBinaryAttribute(cloneBytes(v.Value)), nil
	case *types.AttributeValueMemberBOOL:
		return events.NewBooleanAttribute(v.Value), nil
	case *types.AttributeValueMemberNULL:
		return events.NewNullAttribute(), nil
	case *types.AttributeValueMemberSS:
		return events.NewStringSetAttribute(append([]string{}, v.Value...)), nil
	case *types.AttributeValueMemberNS:
		return events.NewNumberSetAttribute(append([]string{}, v.Value...)), nil
	case *types.AttributeValueMemberBS:
		set := make([][]byte, len(v.Value))
		for i, b := range v.Value {
			set[i] = cloneBytes(b)
		}
		return events.NewBinarySetAttribute(set), nil
	case *types.AttributeValueMemberL:
		list := make([]events.DynamoDBAttributeValue, len(v.Value))
		for i, e := range v.Value {
			c, err := convertValue(e)
			if err != nil {
				return events.DynamoDBAttributeValue{}, fmt.Errorf("[%d]: %w", i, err)
			}
			list[i] = c
		}
		return events.NewListAttribute(list), nil
	case *types.AttributeValueMemberM:
		m, err := convertMap(v.Value)
		if err != nil {
			return events.DynamoDBAttributeValue{}, err
		}
		return events.NewMapAttribute(m), nil
	case *types.UnknownUnionMember:
		return events.DynamoDBAttributeValue{}, fmt.Errorf("unknown attribute type %q", v.Tag)
	case nil:
		return events.DynamoDBAttributeValue{}, errors.New("missing attribute value")
	default:
		return events.DynamoDBAttributeValue{}, fmt.Errorf("unsupported attribute value %T", v)
	}
}

func cloneBytes(b []byte) []byte {
	return append([]byte{}, b...)
}
