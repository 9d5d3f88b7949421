package template

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// dimensionTypes is the resource type each alarm dimension names when it refers to a resource.
var dimensionTypes = map[string]string{
	"QueueName":    TypeQueue,
	"FunctionName": TypeFunction,
	"TableName":    TypeTable,
	"ApiId":        TypeHTTPAPI,
}

// deadLetterQueues are the queues that hold what the gateway gave up on: a queue's RedrivePolicy
// target, an event source's OnFailure destination, or a queue named *DLQ.
func deadLetterQueues(tpl *Template) []string {
	dlq := map[string]bool{}
	for _, q := range tpl.Queues() {
		if strings.HasSuffix(strings.ToUpper(q.LogicalID), "DLQ") ||
			(q.QueueName.Kind == KindLiteral && strings.Contains(strings.ToUpper(q.QueueName.Literal), "DLQ")) {
			dlq[q.LogicalID] = true
		}
		if q.Redrive != nil && q.Redrive.Target != "" {
			dlq[q.Redrive.Target] = true
		}
	}
	for _, fn := range tpl.Functions() {
		for _, s := range fn.StreamSources {
			if s.OnFailure.Kind == KindGetAtt && s.OnFailure.GetAtt[1] == "Arn" {
				dlq[s.OnFailure.GetAtt[0]] = true
			}
		}
	}
	return sortedKeys(dlq)
}

// checkAlarms: every dead-letter queue has an alarm on its depth (ApproximateNumberOfMessagesVisible
// of that queue, above 0); every function's AWS/Lambda Errors and Throttles are read by an alarm
// that notifies; every alarm notifies an SNS topic of the template; every dimension that names a
// resource names one of the right type.
func checkAlarms(tpl *Template) []string {
	var problems []string
	watched := map[string]bool{}   // queues whose depth above 0 alarms
	fnWatched := map[string]bool{} // "function metric" read by an alarm that notifies
	for _, a := range tpl.Alarms() {
		notifies := false
		for _, act := range a.Actions {
			if act.Kind == KindRef && tpl.Resources[act.Ref].Type == TypeTopic {
				notifies = true
			}
		}
		if !notifies {
			problems = append(problems, fmt.Sprintf("alarm %s: AlarmActions names no SNS topic of the template (!Ref a AWS::SNS::Topic)", a.LogicalID))
		}
		for _, m := range a.Metrics {
			for name, v := range m.Dimensions {
				want, typed := dimensionTypes[name]
				var res string
				switch v.Kind {
				case KindRef:
					res = v.Ref
				case KindGetAtt:
					res = v.GetAtt[0]
				}
				if typed && res != "" && tpl.Resources[res].Type != want {
					problems = append(problems, fmt.Sprintf("alarm %s: dimension %s names %s, which is not a %s of the template", a.LogicalID, name, res, want))
				}
			}
			if fn := m.Dimensions["FunctionName"]; notifies && fn.Kind == KindRef &&
				m.Namespace.Kind == KindLiteral && m.Namespace.Literal == "AWS/Lambda" {
				fnWatched[fn.Ref+" "+m.MetricName] = true
			}
			q := m.Dimensions["QueueName"]
			single := a.Expression == "" && len(a.Metrics) == 1
			if single && m.Namespace.Kind == KindLiteral && m.Namespace.Literal == "AWS/SQS" && m.MetricName == "ApproximateNumberOfMessagesVisible" &&
				q.Kind == KindGetAtt && q.GetAtt[1] == "QueueName" &&
				(a.Comparison == "GreaterThanThreshold" && a.Threshold == "0" || a.Comparison == "GreaterThanOrEqualToThreshold" && a.Threshold == "1") {
				watched[q.GetAtt[0]] = true
			}
		}
	}
	for _, fn := range tpl.Functions() {
		for _, metric := range []string{"Errors", "Throttles"} {
			if !fnWatched[fn.LogicalID+" "+metric] {
				problems = append(problems, fmt.Sprintf("function %s: no alarm reads its AWS/Lambda %s (FunctionName !Ref %s) and notifies", fn.LogicalID, metric, fn.LogicalID))
			}
		}
	}
	for _, q := range deadLetterQueues(tpl) {
		if !watched[q] {
			problems = append(problems, fmt.Sprintf("dead-letter queue %s has no alarm on its depth (AWS/SQS ApproximateNumberOfMessagesVisible of !GetAtt %s.QueueName, GreaterThanThreshold 0)", q, q))
		}
	}
	return problems
}

func TestRepoTemplateAlarms(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := Load(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(deadLetterQueues(tpl)) == 0 {
		t.Fatal("no dead-letter queue found: the rule would check nothing")
	}
	for _, p := range checkAlarms(tpl) {
		t.Error(p)
	}
}

// alarmBase has a queue with a DLQ, a stream source's failure queue, and an alarm on each.
const alarmBase = `
Globals:
  Function:
    Runtime: provided.al2023
Resources:
  Topic:
    Type: AWS::SNS::Topic
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
      StreamSpecification: {StreamViewType: NEW_IMAGE}
  Work:
    Type: AWS::SQS::Queue
    Properties:
      RedrivePolicy: {deadLetterTargetArn: !GetAtt Parked.Arn, maxReceiveCount: 3}
  Parked:
    Type: AWS::SQS::Queue
  Failed:
    Type: AWS::SQS::Queue
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Log:
          Type: DynamoDB
          Properties:
            Stream: !GetAtt Table.StreamArn
            StartingPosition: TRIM_HORIZON
            DestinationConfig: {OnFailure: {Type: SQS, Destination: !GetAtt Failed.Arn}}
  ParkedAlarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      AlarmActions: [!Ref Topic]
      Namespace: AWS/SQS
      MetricName: ApproximateNumberOfMessagesVisible
      Dimensions: [{Name: QueueName, Value: !GetAtt Parked.QueueName}]
      ComparisonOperator: GreaterThanThreshold
      Threshold: 0
  FailedAlarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      AlarmActions: [!Ref Topic]
      Namespace: AWS/SQS
      MetricName: ApproximateNumberOfMessagesVisible
      Dimensions: [{Name: QueueName, Value: !GetAtt Failed.QueueName}]
      ComparisonOperator: GreaterThanOrEqualToThreshold
      Threshold: 1
  ErrorsAlarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      AlarmActions: [!Ref Topic]
      ComparisonOperator: GreaterThanThreshold
      Threshold: 0
      Metrics:
        - {Id: total, Expression: SUM(METRICS()), ReturnData: true}
        - {Id: m1, ReturnData: false, MetricStat: {Period: 60, Stat: Sum, Metric: {Namespace: AWS/Lambda, MetricName: Errors, Dimensions: [{Name: FunctionName, Value: !Ref Fn}]}}}
        - {Id: m2, ReturnData: false, MetricStat: {Period: 60, Stat: Sum, Metric: {Namespace: AWS/Lambda, MetricName: Throttles, Dimensions: [{Name: FunctionName, Value: !Ref Fn}]}}}
`

func TestCheckAlarms(t *testing.T) {
	cases := []struct {
		name      string
		old, repl string
		want      string // a problem must contain it; "" for none
	}{
		{"accepted", "", "", ""},
		{"a redrive target without an alarm", "  ParkedAlarm:\n    Type: AWS::CloudWatch::Alarm", "  ParkedAlarm:\n    Type: AWS::CloudWatch::Dashboard", "dead-letter queue Parked has no alarm"},
		{"a failure destination without an alarm", "!GetAtt Failed.QueueName", "!GetAtt Work.QueueName", "dead-letter queue Failed has no alarm"},
		{"a queue named DLQ without an alarm", "  Failed:\n    Type: AWS::SQS::Queue", "  Failed:\n    Type: AWS::SQS::Queue\n  SpareDLQ:\n    Type: AWS::SQS::Queue", "dead-letter queue SpareDLQ has no alarm"},
		{"an alarm on another metric", "MetricName: ApproximateNumberOfMessagesVisible\n      Dimensions: [{Name: QueueName, Value: !GetAtt Parked.QueueName}]", "MetricName: NumberOfMessagesSent\n      Dimensions: [{Name: QueueName, Value: !GetAtt Parked.QueueName}]", "dead-letter queue Parked has no alarm"},
		{"a threshold that lets messages pile up", "ComparisonOperator: GreaterThanThreshold\n      Threshold: 0\n  FailedAlarm", "ComparisonOperator: GreaterThanThreshold\n      Threshold: 10\n  FailedAlarm", "dead-letter queue Parked has no alarm"},
		{"an alarm that notifies nobody", "  FailedAlarm:\n    Type: AWS::CloudWatch::Alarm\n    Properties:\n      AlarmActions: [!Ref Topic]", "  FailedAlarm:\n    Type: AWS::CloudWatch::Alarm\n    Properties:\n      AlarmActions: []", "alarm FailedAlarm: AlarmActions names no SNS topic"},
		{"an alarm that notifies a queue", "  ErrorsAlarm:\n    Type: AWS::CloudWatch::Alarm\n    Properties:\n      AlarmActions: [!Ref Topic]", "  ErrorsAlarm:\n    Type: AWS::CloudWatch::Alarm\n    Properties:\n      AlarmActions: [!Ref Work]", "alarm ErrorsAlarm: AlarmActions names no SNS topic"},
		{"a dimension naming the wrong resource", "Value: !Ref Fn}", "Value: !Ref Table}", "dimension FunctionName names Table"},
		{"a function whose errors no alarm reads", "MetricName: Errors,", "MetricName: Duration,", "function Fn: no alarm reads its AWS/Lambda Errors"},
		{"a function whose throttles no alarm reads", "MetricName: Throttles,", "MetricName: Duration,", "function Fn: no alarm reads its AWS/Lambda Throttles"},
		{"a function watched only by an alarm that notifies nobody", "  ErrorsAlarm:\n    Type: AWS::CloudWatch::Alarm\n    Properties:\n      AlarmActions: [!Ref Topic]", "  ErrorsAlarm:\n    Type: AWS::CloudWatch::Alarm\n    Properties:\n      AlarmActions: []", "function Fn: no alarm reads its AWS/Lambda Errors"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := alarmBase
			if c.old != "" {
				if !strings.Contains(src, c.old) {
					t.Fatalf("the base lacks %q", c.old)
				}
				src = strings.Replace(src, c.old, c.repl, 1)
			}
			problems := checkAlarms(mustParse(t, src))
			if c.want == "" {
				if len(problems) != 0 {
					t.Fatalf("problems: %v", problems)
				}
				return
			}
			for _, p := range problems {
				if strings.Contains(p, c.want) {
					return
				}
			}
			t.Fatalf("no problem contains %q: %v", c.want, problems)
		})
	}
}

// Conditions and the intrinsics of optional properties (Fn::If, Fn::Equals, Fn::Not, …) parse,
// and the references inside them are checked like any other.
func TestConditionReferencesAreChecked(t *testing.T) {
	src := alarmBase + `
  Subscription:
    Type: AWS::SNS::Subscription
    Condition: HasEmail
    Properties:
      TopicArn: !If [HasEmail, !Ref Topic, !Ref "AWS::NoValue"]
      Endpoint: !Ref Email
Conditions:
  HasEmail: !Not [!Equals [!Ref Email, ""]]
  Long: {"Fn::And": [{"Fn::Equals": [{"Ref": Nowhere}, "x"]}, {"Condition": HasEmail}]}
`
	tpl := mustParse(t, src)
	var got []string
	for _, r := range tpl.References() {
		got = append(got, r.Name)
	}
	for _, want := range []string{"Email", "Nowhere", "Topic"} {
		found := false
		for _, g := range got {
			found = found || g == want
		}
		if !found {
			t.Fatalf("reference %s not found in %v", want, got)
		}
	}
	if problems := checkReferences(tpl); len(problems) == 0 || !strings.Contains(strings.Join(problems, "\n"), "Ref Nowhere") {
		t.Fatalf("problems %v", problems)
	}
}
