package template

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// fnTemplate is a template with one function whose environment variable V is set to the
// snippet %s, plus the names the snippets refer to.
const fnTemplate = `
Parameters:
  P: {Type: String, Default: pv}
Resources:
  Q: {Type: AWS::SQS::Queue}
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Environment:
        Variables:
          V: %s
`

func TestParseValues(t *testing.T) {
	ref := func(n string) Value { return Value{Kind: KindRef, Ref: n} }
	getAtt := func(r, a string) Value { return Value{Kind: KindGetAtt, GetAtt: [2]string{r, a}} }
	cases := []struct {
		name, snippet string
		want          Value
		refs          []Reference
	}{
		{"string", "hello", Lit("hello"), nil},
		{"quoted", `"a: b"`, Lit("a: b"), nil},
		{"integer", "10", Lit("10"), nil},
		{"big integer", "1000000", Lit("1000000"), nil},
		{"float", "1.50", Lit("1.50"), nil},
		{"bool", "true", Lit("true"), nil},
		{"null", "~", Lit(""), nil},
		{"explicit str tag", "!!str 5", Lit("5"), nil},
		{"ref short", "!Ref Q", ref("Q"), []Reference{{Name: "Q"}}},
		{"ref long", "{Ref: P}", ref("P"), []Reference{{Name: "P"}}},
		{"ref pseudo", "!Ref AWS::Region", ref("AWS::Region"), []Reference{{Name: "AWS::Region"}}},
		{"getatt short", "!GetAtt Q.Arn", getAtt("Q", "Arn"), []Reference{{Name: "Q", Attr: "Arn"}}},
		{"getatt dotted attribute", "!GetAtt Q.A.B", getAtt("Q", "A.B"), []Reference{{Name: "Q", Attr: "A.B"}}},
		{"getatt short list", "!GetAtt [Q, Arn]", getAtt("Q", "Arn"), []Reference{{Name: "Q", Attr: "Arn"}}},
		{"getatt long list", `{"Fn::GetAtt": [Q, QueueName]}`, getAtt("Q", "QueueName"), []Reference{{Name: "Q", Attr: "QueueName"}}},
		{"getatt long string", `{"Fn::GetAtt": Q.Arn}`, getAtt("Q", "Arn"), []Reference{{Name: "Q", Attr: "Arn"}}},
		{"sub short", `!Sub "q-${Q}-${AWS::Region}-${Q.Arn}-${!Lit}"`, Value{Kind: KindSub, Sub: "q-${Q}-${AWS::Region}-${Q.Arn}-${!Lit}"},
			[]Reference{{Name: "Q"}, {Name: "AWS::Region"}, {Name: "Q", Attr: "Arn"}}},
		{"sub long", `{"Fn::Sub": "x${P}"}`, Value{Kind: KindSub, Sub: "x${P}"}, []Reference{{Name: "P"}}},
		{"sub list", `!Sub ["${A}/${P}", {A: !GetAtt Q.Arn}]`, Value{Kind: KindSub, Sub: "${A}/${P}", SubVars: map[string]Value{"A": getAtt("Q", "Arn")}},
			[]Reference{{Name: "P"}, {Name: "Q", Attr: "Arn"}}},
		{"sub long list", `{"Fn::Sub": ["${A}", {A: lit}]}`, Value{Kind: KindSub, Sub: "${A}", SubVars: map[string]Value{"A": Lit("lit")}}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tpl := mustParse(t, fmt.Sprintf(fnTemplate, c.snippet))
			got := tpl.Functions()[0].Env["V"]
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %#v, want %#v", got, c.want)
			}
			if refs := got.References(); !reflect.DeepEqual(refs, c.refs) {
				t.Errorf("references: got %v, want %v", refs, c.refs)
			}
			var where []Reference
			for _, r := range c.refs {
				r.Where = "Resources.Fn.Properties.Environment.Variables.V"
				where = append(where, r)
			}
			if refs := tpl.References(); !reflect.DeepEqual(refs, where) {
				t.Errorf("template references: got %v, want %v", refs, where)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, src, want string
	}{
		{"unknown short intrinsic", fmt.Sprintf(fnTemplate, "!Join [',', [a, b]]"), "Resources.Fn.Properties.Environment.Variables.V: unsupported intrinsic function Fn::Join"},
		{"unknown long intrinsic", fmt.Sprintf(fnTemplate, `{"Fn::If": [c, a, b]}`), "V: unsupported intrinsic function Fn::If"},
		{"unknown intrinsic anywhere", "Resources:\n  R:\n    Type: Custom::X\n    Properties: {A: [x, !Select [0, [a]]]}\n", "Resources.R.Properties.A[1]: unsupported intrinsic function Fn::Select"},
		{"getatt without attribute", fmt.Sprintf(fnTemplate, "!GetAtt Q"), "V: !GetAtt needs Resource.Attribute"},
		{"getatt list of three", fmt.Sprintf(fnTemplate, "!GetAtt [Q, A, B]"), "V: !GetAtt needs"},
		{"ref of a list", fmt.Sprintf(fnTemplate, "!Ref [Q]"), "V: !Ref needs a name"},
		{"sub unterminated", fmt.Sprintf(fnTemplate, `!Sub "a ${Q"`), "unterminated ${"},
		{"sub empty variable", fmt.Sprintf(fnTemplate, `!Sub "a ${}"`), "bad variable ${}"},
		{"sub bad list", fmt.Sprintf(fnTemplate, `!Sub [a]`), "!Sub list form needs"},
		{"env mapping", fmt.Sprintf(fnTemplate, "{a: b}"), "V: expected a scalar or an intrinsic function, got a mapping"},
		{"duplicate resource", "Resources:\n  R: {Type: AWS::SQS::Queue}\n  R: {Type: AWS::SQS::Queue}\n", `Resources: duplicate key "R"`},
		{"no resources", "Parameters: {}\n", "Resources is missing or empty"},
		{"not a mapping", "- a\n", "top level is not a mapping"},
		{"empty", "", "empty document"},
		{"bad yaml", "a: [\n", "template: yaml"},
		{"resource without type", "Resources:\n  R: {Properties: {}}\n", "Resources.R: Type is required"},
		{"parameter without type", "Parameters:\n  P: {Default: x}\nResources:\n  R: {Type: X}\n", "Parameters.P: Type is required"},
		{"timeout not a number", strings.Replace(fmt.Sprintf(fnTemplate, "x"), "    Properties:\n", "    Properties:\n      Timeout: soon\n", 1), `Resources.Fn.Properties.Timeout: "soon" is not an integer`},
		{"timeout ref", strings.Replace(fmt.Sprintf(fnTemplate, "x"), "    Properties:\n", "    Properties:\n      Timeout: !Ref P\n", 1), "Resources.Fn.Properties.Timeout: must be a literal, not !Ref P"},
		{"route path only", "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      Events:\n        E: {Type: HttpApi, Properties: {Path: /x}}\n", "Resources.F.Properties.Events.E.Properties: Path without Method"},
		{"route method only", "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      Events:\n        E: {Type: HttpApi, Properties: {Method: GET}}\n", "Method without Path"},
		{"event without type", "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      Events:\n        E: {Properties: {}}\n", "Resources.F.Properties.Events.E: Type is required"},
		{"sqs without queue", "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      Events:\n        E: {Type: SQS, Properties: {BatchSize: 5}}\n", "Resources.F.Properties.Events.E.Properties: Queue is required"},
		{"dynamodb without stream", "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      Events:\n        E: {Type: DynamoDB, Properties: {StartingPosition: LATEST}}\n", "Resources.F.Properties.Events.E.Properties: Stream is required"},
		{"dynamodb retries not a number", "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      Events:\n        E: {Type: DynamoDB, Properties: {Stream: !GetAtt T.StreamArn, MaximumRetryAttempts: forever}}\n", `Resources.F.Properties.Events.E.Properties.MaximumRetryAttempts: "forever" is not an integer`},
		{"dynamodb bisect not a bool", "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      Events:\n        E: {Type: DynamoDB, Properties: {Stream: !GetAtt T.StreamArn, BisectBatchOnFunctionError: sometimes}}\n", `BisectBatchOnFunctionError: "sometimes" is not a boolean`},
		{"filter without pattern", "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      Events:\n        E: {Type: DynamoDB, Properties: {Stream: !GetAtt T.StreamArn, FilterCriteria: {Filters: [{}]}}}\n", "Resources.F.Properties.Events.E.Properties.FilterCriteria.Filters[0]: Pattern is required"},
		{"filter pattern as yaml", "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      Events:\n        E: {Type: DynamoDB, Properties: {Stream: !GetAtt T.StreamArn, FilterCriteria: {Filters: [{Pattern: {eventName: [INSERT]}}]}}}\n", "Filters[0].Pattern: expected a scalar or an intrinsic function, got a mapping"},
		{"filters not a list", "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      Events:\n        E: {Type: DynamoDB, Properties: {Stream: !GetAtt T.StreamArn, FilterCriteria: {Filters: x}}}\n", "FilterCriteria.Filters: expected a list"},
		{"destination config not a mapping", "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      Events:\n        E: {Type: DynamoDB, Properties: {Stream: !GetAtt T.StreamArn, DestinationConfig: [x]}}\n", "Properties.DestinationConfig: expected a mapping"},
		{"stream without view type", "Resources:\n  T:\n    Type: AWS::DynamoDB::Table\n    Properties:\n      KeySchema: [{AttributeName: a, KeyType: HASH}]\n      StreamSpecification: {}\n", `Resources.T.Properties.StreamSpecification: StreamViewType is "", want one of [NEW_IMAGE OLD_IMAGE NEW_AND_OLD_IMAGES KEYS_ONLY]`},
		{"bad stream view type", "Resources:\n  T:\n    Type: AWS::DynamoDB::Table\n    Properties:\n      KeySchema: [{AttributeName: a, KeyType: HASH}]\n      StreamSpecification: {StreamViewType: NEW_IMAGES}\n", `StreamViewType is "NEW_IMAGES"`},
		{"stream view type ref", "Parameters:\n  V: {Type: String}\nResources:\n  T:\n    Type: AWS::DynamoDB::Table\n    Properties:\n      KeySchema: [{AttributeName: a, KeyType: HASH}]\n      StreamSpecification: {StreamViewType: !Ref V}\n", "Resources.T.Properties.StreamSpecification.StreamViewType: must be a literal, not !Ref V"},
		{"fifo not a bool", "Resources:\n  Q: {Type: AWS::SQS::Queue, Properties: {FifoQueue: maybe}}\n", `Resources.Q.Properties.FifoQueue: "maybe" is not a boolean`},
		{"redrive without count", "Resources:\n  Q: {Type: AWS::SQS::Queue, Properties: {RedrivePolicy: {deadLetterTargetArn: !GetAtt D.Arn}}}\n", "Resources.Q.Properties.RedrivePolicy: maxReceiveCount must be at least 1"},
		{"two hash keys", "Resources:\n  T:\n    Type: AWS::DynamoDB::Table\n    Properties:\n      KeySchema: [{AttributeName: a, KeyType: HASH}, {AttributeName: b, KeyType: HASH}]\n", `Resources.T.Properties.KeySchema[1]: KeyType must be one HASH and at most one RANGE, got "HASH"`},
		{"no hash key", "Resources:\n  T:\n    Type: AWS::DynamoDB::Table\n    Properties:\n      KeySchema: [{AttributeName: a, KeyType: RANGE}]\n", "Resources.T.Properties.KeySchema: no HASH key"},
		{"bad attribute type", "Resources:\n  T:\n    Type: AWS::DynamoDB::Table\n    Properties:\n      AttributeDefinitions: [{AttributeName: a, AttributeType: X}]\n      KeySchema: [{AttributeName: a, KeyType: HASH}]\n", "Resources.T.Properties.AttributeDefinitions[0]: needs AttributeName and an AttributeType of S, N or B"},
		{"output without value", "Resources:\n  R: {Type: X}\nOutputs:\n  O: {Description: d}\n", "Outputs.O: Value is required"},
		{"properties not a mapping", "Resources:\n  F: {Type: AWS::Serverless::Function, Properties: [a]}\n", "Resources.F.Properties: expected a mapping"},
		{"merge key", "Resources:\n  R: &r {Type: X}\n  S:\n    <<: *r\n", "YAML merge keys (<<) are not supported"},
		{"resource named like a parameter", "Parameters:\n  R: {Type: String}\nResources:\n  R: {Type: X}\n", "Resources.R: logical id is also a parameter name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.src))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
}

func TestGlobalsMerge(t *testing.T) {
	tpl := mustParse(t, `
Globals:
  Function:
    Runtime: provided.al2023
    Architectures: [arm64]
    MemorySize: 256
    Timeout: 30
    Environment:
      Variables:
        A: global-a
        B: global-b
Resources:
  Plain:
    Type: AWS::Serverless::Function
  Own:
    Type: AWS::Serverless::Function
    Properties:
      Architectures: [x86_64]
      Timeout: 10
      Environment:
        Variables:
          B: !Ref Plain
          C: own-c
`)
	fns := tpl.Functions()
	if len(fns) != 2 || fns[0].LogicalID != "Own" || fns[1].LogicalID != "Plain" {
		t.Fatalf("functions not sorted by logical id: %+v", fns)
	}
	own, plain := fns[0], fns[1]
	wantOwn := Function{
		LogicalID: "Own", Runtime: "provided.al2023", Architectures: []string{"x86_64"}, Timeout: 10, MemorySize: 256, RecursiveLoop: "Terminate",
		Env: map[string]Value{"A": Lit("global-a"), "B": {Kind: KindRef, Ref: "Plain"}, "C": Lit("own-c")},
	}
	if !reflect.DeepEqual(own, wantOwn) {
		t.Errorf("Own:\n got %+v\nwant %+v", own, wantOwn)
	}
	wantPlain := Function{
		LogicalID: "Plain", Runtime: "provided.al2023", Architectures: []string{"arm64"}, Timeout: 30, MemorySize: 256, RecursiveLoop: "Terminate",
		Env: map[string]Value{"A": Lit("global-a"), "B": Lit("global-b")},
	}
	if !reflect.DeepEqual(plain, wantPlain) {
		t.Errorf("Plain:\n got %+v\nwant %+v", plain, wantPlain)
	}
}

func TestFunctionDefaultsAndEvents(t *testing.T) {
	tpl := mustParse(t, `
Resources:
  Api: {Type: AWS::Serverless::HttpApi}
  Q: {Type: AWS::SQS::Queue}
  F:
    Type: AWS::Serverless::Function
    Metadata: {BuildMethod: makefile}
    Properties:
      CodeUri: .
      Handler: bootstrap
      Policies:
        - AWSLambdaBasicExecutionRole
        - SQSPollerPolicy: {QueueName: !GetAtt Q.QueueName}
        - VPCAccessPolicy: {}
        - Statement: [{Effect: Allow, Action: "s3:GetObject", Resource: "*"}]
        - !Sub "arn:${AWS::Partition}:iam::aws:policy/ReadOnlyAccess"
      Events:
        Post: {Type: HttpApi, Properties: {ApiId: !Ref Api, Path: /v1/x, Method: post}}
        Any: {Type: HttpApi, Properties: {ApiId: !Ref Api, Path: $default, Method: any}}
        Implicit: {Type: HttpApi, Properties: {Path: /y, Method: GET, PayloadFormatVersion: "1.0"}}
        Work: {Type: SQS, Properties: {Queue: !GetAtt Q.Arn}}
        Tuned: {Type: SQS, Properties: {Queue: "arn:aws:sqs:r:1:q", BatchSize: 5, MaximumBatchingWindowInSeconds: 2, Enabled: false, FunctionResponseTypes: [ReportBatchItemFailures]}}
        Tick: {Type: Schedule, Properties: {Schedule: rate(1 minute)}}
`)
	fn := tpl.Functions()[0]
	if fn.Timeout != 3 || fn.MemorySize != 128 || !reflect.DeepEqual(fn.Architectures, []string{"x86_64"}) {
		t.Errorf("Lambda defaults: Timeout %d MemorySize %d Architectures %v", fn.Timeout, fn.MemorySize, fn.Architectures)
	}
	if fn.BuildMethod != "makefile" || fn.CodeURI != "." || fn.Handler != "bootstrap" || fn.Runtime != "" || len(fn.Env) != 0 {
		t.Errorf("got %+v", fn)
	}
	api := Value{Kind: KindRef, Ref: "Api"}
	wantRoutes := []Route{
		{Event: "Any", API: api, Method: "ANY", Path: "$default", Default: true, PayloadFormatVersion: "2.0"},
		{Event: "Implicit", Method: "GET", Path: "/y", PayloadFormatVersion: "1.0"},
		{Event: "Post", API: api, Method: "POST", Path: "/v1/x", PayloadFormatVersion: "2.0"},
	}
	if !reflect.DeepEqual(fn.Routes, wantRoutes) {
		t.Errorf("routes:\n got %+v\nwant %+v", fn.Routes, wantRoutes)
	}
	wantSQS := []SQSSource{
		{Event: "Tuned", Source: Lit("arn:aws:sqs:r:1:q"), BatchSize: 5, MaximumBatchingWindowInSeconds: 2, ReportBatchItemFailures: true},
		{Event: "Work", Queue: "Q", Source: Value{Kind: KindGetAtt, GetAtt: [2]string{"Q", "Arn"}}, BatchSize: 10, Enabled: true},
	}
	if !reflect.DeepEqual(fn.SQSSources, wantSQS) {
		t.Errorf("sqs:\n got %+v\nwant %+v", fn.SQSSources, wantSQS)
	}
	wantPolicies := []Policy{
		{Managed: Lit("AWSLambdaBasicExecutionRole")},
		{Template: "SQSPollerPolicy", Args: map[string]Value{"QueueName": {Kind: KindGetAtt, GetAtt: [2]string{"Q", "QueueName"}}}},
		{Template: "VPCAccessPolicy", Args: map[string]Value{}},
		{Document: true, Statements: []Statement{{Effect: "Allow", Actions: []string{"s3:GetObject"}, Resources: []Value{Lit("*")}}}},
		{Managed: Value{Kind: KindSub, Sub: "arn:${AWS::Partition}:iam::aws:policy/ReadOnlyAccess"}},
	}
	if !reflect.DeepEqual(fn.Policies, wantPolicies) {
		t.Errorf("policies:\n got %+v\nwant %+v", fn.Policies, wantPolicies)
	}
}

func TestStreamSources(t *testing.T) {
	tpl := mustParse(t, `
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
      StreamSpecification:
        StreamViewType: NEW_AND_OLD_IMAGES
  DLQ: {Type: AWS::SQS::Queue}
  F:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        LogStream:
          Type: DynamoDB
          Properties:
            Stream: !GetAtt Table.StreamArn
            StartingPosition: TRIM_HORIZON
            BatchSize: 100
            MaximumBatchingWindowInSeconds: 1
            BisectBatchOnFunctionError: true
            MaximumRetryAttempts: 100
            FunctionResponseTypes: [ReportBatchItemFailures]
            FilterCriteria:
              Filters:
                - Pattern: '{"eventName":["INSERT"],"dynamodb":{"NewImage":{"kind":{"S":["event"]}}}}'
                - Pattern: '{"eventName":["REMOVE"]}'
            DestinationConfig:
              OnFailure:
                Type: SQS
                Destination: !GetAtt DLQ.Arn
        Defaults:
          Type: DynamoDB
          Properties:
            Stream: "arn:aws:dynamodb:us-east-1:1:table/t/stream/2024-01-01T00:00:00.000"
            StartingPosition: LATEST
            Enabled: false
        Work: {Type: SQS, Properties: {Queue: !GetAtt DLQ.Arn}}
`)
	want := []StreamSource{
		{
			Event: "Defaults", Stream: Lit("arn:aws:dynamodb:us-east-1:1:table/t/stream/2024-01-01T00:00:00.000"),
			StartingPosition: "LATEST", BatchSize: 100, MaximumRetryAttempts: -1,
		},
		{
			Event: "LogStream", Table: "Table", Stream: Value{Kind: KindGetAtt, GetAtt: [2]string{"Table", "StreamArn"}},
			StartingPosition: "TRIM_HORIZON", BatchSize: 100, MaximumBatchingWindowInSeconds: 1, BisectBatchOnFunctionError: true,
			MaximumRetryAttempts: 100, ReportBatchItemFailures: true,
			FilterPatterns: []string{`{"eventName":["INSERT"],"dynamodb":{"NewImage":{"kind":{"S":["event"]}}}}`, `{"eventName":["REMOVE"]}`},
			OnFailure:      Value{Kind: KindGetAtt, GetAtt: [2]string{"DLQ", "Arn"}}, Enabled: true,
		},
	}
	fn := tpl.Functions()[0]
	if !reflect.DeepEqual(fn.StreamSources, want) {
		t.Errorf("stream sources:\n got %+v\nwant %+v", fn.StreamSources, want)
	}
	if len(fn.SQSSources) != 1 {
		t.Errorf("sqs sources %+v", fn.SQSSources)
	}
	if got := tpl.Tables()[0].StreamViewType; got != "NEW_AND_OLD_IMAGES" {
		t.Errorf("StreamViewType %q", got)
	}
	// !GetAtt Table.StreamArn is a reference to the table.
	var refs []Reference
	for _, r := range tpl.References() {
		if r.Attr == "StreamArn" {
			refs = append(refs, r)
		}
	}
	wantRefs := []Reference{{Where: "Resources.F.Properties.Events.LogStream.Properties.Stream", Name: "Table", Attr: "StreamArn"}}
	if !reflect.DeepEqual(refs, wantRefs) {
		t.Errorf("references %+v, want %+v", refs, wantRefs)
	}
	if problems := checkReferences(tpl); len(problems) > 0 {
		t.Errorf("references: %q", problems)
	}
}

func TestPoliciesForms(t *testing.T) {
	cases := []struct {
		name, policies string
		want           []Policy
	}{
		{"single name", "AmazonSQSFullAccess", []Policy{{Managed: Lit("AmazonSQSFullAccess")}}},
		{"single document", "{Version: '2012-10-17', Statement: []}", []Policy{{Document: true}}},
		{"single ref", "!Ref P", []Policy{{Managed: Value{Kind: KindRef, Ref: "P"}}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tpl := mustParse(t, "Parameters: {P: {Type: String}}\nResources:\n  F: {Type: AWS::Serverless::Function, Properties: {Policies: "+c.policies+"}}\n")
			if got := tpl.Functions()[0].Policies; !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestTablesQueuesParametersOutputs(t *testing.T) {
	tpl := mustParse(t, `
Parameters:
  Secret: {Type: String, NoEcho: true, Description: shh}
  Size: {Type: Number, Default: 10, AllowedValues: [10, 20]}
  Flag: {Type: String, Default: "", NoEcho: "false", AllowedPattern: "^[a-z]*$"}
Resources:
  T:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub "${AWS::StackName}-t"
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}, {AttributeName: sk, AttributeType: N}, {AttributeName: g, AttributeType: B}]
      KeySchema: [{AttributeName: sk, KeyType: RANGE}, {AttributeName: pk, KeyType: HASH}]
      GlobalSecondaryIndexes:
        - {IndexName: byG, KeySchema: [{AttributeName: g, KeyType: HASH}], Projection: {ProjectionType: INCLUDE, NonKeyAttributes: [a, b]}}
      LocalSecondaryIndexes:
        - {IndexName: byPk, KeySchema: [{AttributeName: pk, KeyType: HASH}, {AttributeName: g, KeyType: RANGE}], Projection: {ProjectionType: KEYS_ONLY}}
      TimeToLiveSpecification: {AttributeName: ttl, Enabled: true}
  Plain:
    Type: AWS::DynamoDB::Table
    Properties:
      AttributeDefinitions: [{AttributeName: id, AttributeType: S}]
      KeySchema: [{AttributeName: id, KeyType: HASH}]
      TimeToLiveSpecification: {AttributeName: ttl, Enabled: false}
  Main:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: main.fifo
      FifoQueue: true
      ContentBasedDeduplication: "true"
      VisibilityTimeout: 180
      MessageRetentionPeriod: 600
      DelaySeconds: 5
      RedrivePolicy: {deadLetterTargetArn: {"Fn::GetAtt": [Dead, Arn]}, maxReceiveCount: "4"}
  Dead: {Type: AWS::SQS::Queue, Properties: {FifoQueue: true}}
  Other: {Type: AWS::SNS::Topic}
Outputs:
  TableName: {Description: the table, Value: !Ref T}
`)
	wantTables := []Table{
		{LogicalID: "Plain", BillingMode: "PROVISIONED", AttributeDefinitions: []AttributeDefinition{{"id", "S"}}, Key: KeySchema{Hash: "id"}},
		{
			LogicalID: "T", TableName: Value{Kind: KindSub, Sub: "${AWS::StackName}-t"}, BillingMode: "PAY_PER_REQUEST",
			AttributeDefinitions: []AttributeDefinition{{"pk", "S"}, {"sk", "N"}, {"g", "B"}},
			Key:                  KeySchema{Hash: "pk", Range: "sk"},
			GSIs:                 []Index{{Name: "byG", Key: KeySchema{Hash: "g"}, ProjectionType: "INCLUDE", NonKeyAttributes: []string{"a", "b"}}},
			LSIs:                 []Index{{Name: "byPk", Key: KeySchema{Hash: "pk", Range: "g"}, ProjectionType: "KEYS_ONLY"}},
			TTLAttribute:         "ttl",
		},
	}
	if got := tpl.Tables(); !reflect.DeepEqual(got, wantTables) {
		t.Errorf("tables:\n got %+v\nwant %+v", got, wantTables)
	}
	wantQueues := []Queue{
		{LogicalID: "Dead", Fifo: true, VisibilityTimeout: 30, MessageRetentionPeriod: 345600},
		{
			LogicalID: "Main", QueueName: Lit("main.fifo"), Fifo: true, ContentBasedDeduplication: true, VisibilityTimeout: 180,
			MessageRetentionPeriod: 600, DelaySeconds: 5,
			Redrive: &Redrive{Target: "Dead", TargetARN: Value{Kind: KindGetAtt, GetAtt: [2]string{"Dead", "Arn"}}, MaxReceiveCount: 4},
		},
	}
	if got := tpl.Queues(); !reflect.DeepEqual(got, wantQueues) {
		t.Errorf("queues:\n got %+v\nwant %+v", got, wantQueues)
	}
	wantParams := map[string]Parameter{
		"Secret": {Name: "Secret", Type: "String", NoEcho: true, Description: "shh"},
		"Size":   {Name: "Size", Type: "Number", Default: "10", HasDefault: true, AllowedValues: []string{"10", "20"}},
		"Flag":   {Name: "Flag", Type: "String", Default: "", HasDefault: true, AllowedPattern: "^[a-z]*$"},
	}
	if !reflect.DeepEqual(tpl.Parameters, wantParams) {
		t.Errorf("parameters:\n got %+v\nwant %+v", tpl.Parameters, wantParams)
	}
	wantOutputs := map[string]Output{"TableName": {Name: "TableName", Description: "the table", Value: Value{Kind: KindRef, Ref: "T"}}}
	if !reflect.DeepEqual(tpl.Outputs, wantOutputs) {
		t.Errorf("outputs: got %+v, want %+v", tpl.Outputs, wantOutputs)
	}
	if r := tpl.Resources["Other"]; r != (Resource{LogicalID: "Other", Type: "AWS::SNS::Topic"}) {
		t.Errorf("Resources[Other] = %+v", r)
	}
	if len(tpl.Resources) != 5 {
		t.Errorf("got %d resources, want 5", len(tpl.Resources))
	}

	vals, err := tpl.ParameterValues(map[string]string{"Secret": "s3cret", "Size": "20"})
	if err != nil || !reflect.DeepEqual(vals, map[string]string{"Secret": "s3cret", "Size": "20", "Flag": ""}) {
		t.Errorf("ParameterValues = %v, %v", vals, err)
	}
	if _, err := tpl.ParameterValues(map[string]string{"Nope": "x"}); err == nil ||
		!strings.Contains(err.Error(), "parameter Nope is not declared") || !strings.Contains(err.Error(), "parameter Secret has no default and no value") {
		t.Errorf("ParameterValues with an unknown and a missing parameter: %v", err)
	}
}

func TestResolve(t *testing.T) {
	r := ResolverFuncs{
		RefFunc: func(name string) (string, error) {
			switch name {
			case "InboundQueue":
				return "http://127.0.0.1:9324/000000000000/inbound.fifo", nil
			case "AWS::Region":
				return "us-east-1", nil
			case "P":
				return "pv", nil
			}
			return "", errors.New("unknown")
		},
		GetAttFunc: func(res, attr string) (string, error) {
			if res == "InboundQueue" && attr == "Arn" {
				return "arn:aws:sqs:us-east-1:000000000000:inbound.fifo", nil
			}
			return "", errors.New("unknown")
		},
	}
	cases := []struct {
		name    string
		v       Value
		want    string
		wantErr string
	}{
		{"literal", Lit("10"), "10", ""},
		{"ref", Value{Kind: KindRef, Ref: "InboundQueue"}, "http://127.0.0.1:9324/000000000000/inbound.fifo", ""},
		{"getatt", Value{Kind: KindGetAtt, GetAtt: [2]string{"InboundQueue", "Arn"}}, "arn:aws:sqs:us-east-1:000000000000:inbound.fifo", ""},
		{"sub", Value{Kind: KindSub, Sub: "${P}@${AWS::Region}:${InboundQueue.Arn} ${!Keep} $x {y}"}, "pv@us-east-1:arn:aws:sqs:us-east-1:000000000000:inbound.fifo ${Keep} $x {y}", ""},
		{"sub vars", Value{Kind: KindSub, Sub: "${A}-${P}", SubVars: map[string]Value{"A": {Kind: KindRef, Ref: "AWS::Region"}}}, "us-east-1-pv", ""},
		{"ref error", Value{Kind: KindRef, Ref: "Nope"}, "", "resolve !Ref Nope: unknown"},
		{"getatt error", Value{Kind: KindGetAtt, GetAtt: [2]string{"Nope", "Arn"}}, "", "resolve !GetAtt Nope.Arn: unknown"},
		{"sub error", Value{Kind: KindSub, Sub: "a${Nope}"}, "", `resolve ${Nope} in !Sub "a${Nope}": resolve !Ref Nope: unknown`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Resolve(c.v, r)
			if c.wantErr != "" {
				if err == nil || err.Error() != c.wantErr {
					t.Errorf("got %q, %v; want error %q", got, err, c.wantErr)
				}
				return
			}
			if err != nil || got != c.want {
				t.Errorf("got %q, %v; want %q", got, err, c.want)
			}
		})
	}
	if _, err := Resolve(Value{Kind: KindRef, Ref: "X"}, ResolverFuncs{}); err == nil {
		t.Error("empty ResolverFuncs: want an error")
	}
}

func TestValueString(t *testing.T) {
	cases := map[string]Value{
		`"x"`:                        Lit("x"),
		"!Ref A":                     {Kind: KindRef, Ref: "A"},
		"!GetAtt A.Arn":              {Kind: KindGetAtt, GetAtt: [2]string{"A", "Arn"}},
		`!Sub "${A}"`:                {Kind: KindSub, Sub: "${A}"},
		`!Sub ["${B}", 1 variables]`: {Kind: KindSub, Sub: "${B}", SubVars: map[string]Value{"B": Lit("b")}},
	}
	for want, v := range cases {
		if got := v.String(); got != want {
			t.Errorf("got %s, want %s", v.String(), want)
		}
	}
}
