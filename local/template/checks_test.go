package template

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// checkBase is a small template every check accepts; the cases below break it one way each.
const checkBase = `
Parameters:
  ApiSecret: {Type: String, NoEcho: true}
  Level: {Type: String, Default: INFO}
  Retention: {Type: Number, Default: 30}
Globals:
  Function:
    Runtime: provided.al2023
    Architectures: [arm64]
    Handler: bootstrap
    Timeout: 10
    Environment:
      Variables:
        HOOKGATE_LEVEL: !Ref Level
Resources:
  Api:
    Type: AWS::Serverless::HttpApi
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      AttributeDefinitions:
        - {AttributeName: pk, AttributeType: S}
        - {AttributeName: g1, AttributeType: S}
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
      GlobalSecondaryIndexes:
        - {IndexName: gsi1, KeySchema: [{AttributeName: g1, KeyType: HASH}], Projection: {ProjectionType: ALL}}
      StreamSpecification: {StreamViewType: NEW_IMAGE}
  Q:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 60
      RedrivePolicy: {deadLetterTargetArn: !GetAtt DLQ.Arn, maxReceiveCount: 3}
      SqsManagedSseEnabled: true
  DLQ:
    Type: AWS::SQS::Queue
    Properties:
      KmsMasterKeyId: alias/aws/sqs
  WebLogs:
    Type: AWS::Logs::LogGroup
    Properties: {RetentionInDays: !Ref Retention}
  WorkLogs:
    Type: AWS::Logs::LogGroup
    Properties: {RetentionInDays: 30}
  WebFunction:
    Type: AWS::Serverless::Function
    Metadata: {BuildMethod: makefile}
    Properties:
      Environment:
        Variables:
          HOOKGATE_TABLE: !Ref Table
          HOOKGATE_SECRET: !Ref ApiSecret
      Policies:
        - DynamoDBReadPolicy: {TableName: !Ref Table}
      LoggingConfig: {LogGroup: !Ref WebLogs}
      Events:
        Get: {Type: HttpApi, Properties: {ApiId: !Ref Api, Path: "/items/{id}", Method: get}}
        Proxy: {Type: HttpApi, Properties: {ApiId: !Ref Api, Path: "/files/{proxy+}", Method: ANY}}
        Default: {Type: HttpApi, Properties: {ApiId: !Ref Api}}
  WorkFunction:
    Type: AWS::Serverless::Function
    Metadata: {BuildMethod: makefile}
    Properties:
      Events:
        Work: {Type: SQS, Properties: {Queue: !GetAtt Q.Arn, FunctionResponseTypes: [ReportBatchItemFailures], ScalingConfig: {MaximumConcurrency: !Ref Level}}}
        Log:
          Type: DynamoDB
          Properties:
            Stream: !GetAtt Table.StreamArn
            StartingPosition: TRIM_HORIZON
            FunctionResponseTypes: [ReportBatchItemFailures]
            FilterCriteria: {Filters: [{Pattern: '{"eventName":["INSERT"]}'}]}
            DestinationConfig: {OnFailure: {Type: SQS, Destination: !GetAtt DLQ.Arn}}
      LoggingConfig: {LogGroup: !Ref WorkLogs}
Outputs:
  Url: {Value: !Sub "https://${Api}.execute-api.${AWS::Region}.${AWS::URLSuffix}"}
`

func TestChecks(t *testing.T) {
	settings := func(tpl *Template) []string { return checkFunctionSettings(tpl.Functions()) }
	checks := map[string]func(*Template) []string{
		"settings": settings, "routes": checkRoutes, "sqs": checkSQSSources, "streams": checkStreamSources, "queues": checkQueues,
		"tables": checkTables, "logs": checkLogGroups, "references": checkReferences, "secrets": checkSecretParameters, "policies": checkPolicies,
	}
	tpl := mustParse(t, checkBase)
	for name, check := range checks {
		if problems := check(tpl); len(problems) > 0 {
			t.Errorf("base template, check %s: unexpected problems %q", name, problems)
		}
	}

	cases := []struct {
		name     string
		check    string
		old, new string // the edit that breaks checkBase
		want     string // a problem must contain this
	}{
		{"runtime", "settings", "Runtime: provided.al2023", "Runtime: go1.x", `WebFunction: Runtime is "go1.x", want provided.al2023`},
		{"architecture", "settings", "Architectures: [arm64]", "Architectures: [x86_64]", "WorkFunction: Architectures is [x86_64], want [arm64]"},
		{"architecture default", "settings", "    Architectures: [arm64]\n", "", "Architectures is [x86_64]"},
		{"handler", "settings", "Handler: bootstrap", "Handler: main", `Handler is "main", want bootstrap`},
		{"build method", "settings", "Metadata: {BuildMethod: makefile}\n    Properties:\n      Environment", "Metadata: {BuildMethod: go1.x}\n    Properties:\n      Environment", `WebFunction: Metadata.BuildMethod is "go1.x", want makefile`},

		{"api is not an HttpApi", "routes", "ApiId: !Ref Api, Path: \"/items", "ApiId: !Ref Table, Path: \"/items", "WebFunction.Events.Get: ApiId !Ref Table is not an AWS::Serverless::HttpApi resource"},
		{"api missing", "routes", "{ApiId: !Ref Api, Path: \"/items/{id}\", ", "{Path: \"/items/{id}\", ", "WebFunction.Events.Get: HttpApi event has no ApiId"},
		{"api literal", "routes", "ApiId: !Ref Api, Path: \"/items", "ApiId: abc123, Path: \"/items", `ApiId is "abc123", want !Ref`},
		{"duplicate route", "routes", "      Events:\n        Work:", "      Events:\n        Dup: {Type: HttpApi, Properties: {ApiId: !Ref Api, Path: \"/items/{key}\", Method: GET}}\n        Work:", "WorkFunction.Events.Dup: route GET /items/{key} is also declared by WebFunction.Events.Get"},
		{"duplicate default", "routes", "      Events:\n        Work:", "      Events:\n        Fallback: {Type: HttpApi, Properties: {ApiId: !Ref Api}}\n        Work:", "WorkFunction.Events.Fallback: route ANY $default is also declared by WebFunction.Events.Default"},
		{"path without slash", "routes", `"/items/{id}"`, `"items/{id}"`, `Path "items/{id}" is malformed: must start with /`},
		{"path trailing slash", "routes", `"/items/{id}"`, `"/items/{id}/"`, "empty segment"},
		{"path double slash", "routes", `"/items/{id}"`, `"/items//{id}"`, "empty segment"},
		{"path open brace", "routes", `"/items/{id}"`, `"/items/{id"`, "not allowed"},
		{"path partial param", "routes", `"/items/{id}"`, `"/items/x{id}"`, "not allowed"},
		{"path bad param name", "routes", `"/items/{id}"`, `"/items/{i-d}"`, "parameter {i-d} must be {name}"},
		{"path greedy not last", "routes", `"/files/{proxy+}"`, `"/files/{proxy+}/x"`, "greedy parameter {proxy+} must be the last segment"},
		{"path repeated param", "routes", `"/items/{id}"`, `"/items/{id}/{id}"`, "parameter {id} appears twice"},
		{"path query", "routes", `"/items/{id}"`, `"/items?x=1"`, "not allowed"},
		{"bad method", "routes", "Method: get", "Method: fetch", `Method "FETCH" is not one of`},

		{"queue not declared", "sqs", "Queue: !GetAtt Q.Arn", "Queue: !GetAtt Nope.Arn", "WorkFunction.Events.Work: Queue !GetAtt Nope.Arn is not an AWS::SQS::Queue"},
		{"queue is a table", "sqs", "Queue: !GetAtt Q.Arn", "Queue: !GetAtt Table.Arn", "Queue !GetAtt Table.Arn is not an AWS::SQS::Queue"},
		{"queue literal arn", "sqs", "Queue: !GetAtt Q.Arn", "Queue: arn:aws:sqs:us-east-1:1:q", `Queue is "arn:aws:sqs:us-east-1:1:q", want !GetAtt`},
		{"queue url", "sqs", "Queue: !GetAtt Q.Arn", "Queue: !Ref Q", "Queue is !Ref Q, want !GetAtt"},
		{"no batch item failures", "sqs", ", FunctionResponseTypes: [ReportBatchItemFailures]", "", "WorkFunction.Events.Work: FunctionResponseTypes lacks ReportBatchItemFailures"},
		{"no maximum concurrency", "sqs", ", ScalingConfig: {MaximumConcurrency: !Ref Level}", "", "WorkFunction.Events.Work: ScalingConfig.MaximumConcurrency is not set"},
		{"scaling config without maximum concurrency", "sqs", "ScalingConfig: {MaximumConcurrency: !Ref Level}", "ScalingConfig: {}", "WorkFunction.Events.Work: ScalingConfig.MaximumConcurrency is not set"},
		{"visibility below timeout", "sqs", "VisibilityTimeout: 60", "VisibilityTimeout: 5", "queue Q has VisibilityTimeout 5, less than the function Timeout 10"},

		{"stream of an undeclared table", "streams", "Stream: !GetAtt Table.StreamArn", "Stream: !GetAtt Tabel.StreamArn", "WorkFunction.Events.Log: Stream !GetAtt Tabel.StreamArn is not an AWS::DynamoDB::Table of the template"},
		{"stream of a queue", "streams", "Stream: !GetAtt Table.StreamArn", "Stream: !GetAtt Q.StreamArn", "Stream !GetAtt Q.StreamArn is not an AWS::DynamoDB::Table"},
		{"stream is the table arn", "streams", "Stream: !GetAtt Table.StreamArn", "Stream: !GetAtt Table.Arn", "WorkFunction.Events.Log: Stream is !GetAtt Table.Arn, want !GetAtt <Table>.StreamArn"},
		{"stream literal arn", "streams", "Stream: !GetAtt Table.StreamArn", "Stream: arn:aws:dynamodb:us-east-1:1:table/t/stream/x", `Stream is "arn:aws:dynamodb:us-east-1:1:table/t/stream/x", want !GetAtt`},
		{"table without stream", "streams", "      StreamSpecification: {StreamViewType: NEW_IMAGE}\n", "", "WorkFunction.Events.Log: table Table has no StreamSpecification"},
		{"stream without batch item failures", "streams", "            FunctionResponseTypes: [ReportBatchItemFailures]\n            FilterCriteria", "            FilterCriteria", "WorkFunction.Events.Log: FunctionResponseTypes lacks ReportBatchItemFailures"},
		{"latest", "streams", "StartingPosition: TRIM_HORIZON", "StartingPosition: LATEST", ""},
		{"no starting position", "streams", "            StartingPosition: TRIM_HORIZON\n", "", `WorkFunction.Events.Log: StartingPosition is "", want TRIM_HORIZON or LATEST`},
		{"at timestamp", "streams", "StartingPosition: TRIM_HORIZON", "StartingPosition: AT_TIMESTAMP", `StartingPosition is "AT_TIMESTAMP"`},
		{"batch size zero", "streams", "StartingPosition: TRIM_HORIZON", "StartingPosition: TRIM_HORIZON\n            BatchSize: 0", "BatchSize is 0, want 1 to 10000"},
		{"batch size too big", "streams", "StartingPosition: TRIM_HORIZON", "StartingPosition: TRIM_HORIZON\n            BatchSize: 10001", "BatchSize is 10001, want 1 to 10000"},
		{"window too long", "streams", "StartingPosition: TRIM_HORIZON", "StartingPosition: TRIM_HORIZON\n            MaximumBatchingWindowInSeconds: 301", "MaximumBatchingWindowInSeconds is 301, want 0 to 300"},
		{"retries below -1", "streams", "StartingPosition: TRIM_HORIZON", "StartingPosition: TRIM_HORIZON\n            MaximumRetryAttempts: -2", "MaximumRetryAttempts is -2, want -1 to 10000"},
		{"filter not json", "streams", `Pattern: '{"eventName":["INSERT"]}'`, "Pattern: 'eventName=INSERT'", `WorkFunction.Events.Log: FilterCriteria.Filters[0].Pattern is not a JSON object: "eventName=INSERT"`},
		{"filter json array", "streams", `Pattern: '{"eventName":["INSERT"]}'`, `Pattern: '["INSERT"]'`, "FilterCriteria.Filters[0].Pattern is not a JSON object"},
		{"no destination", "streams", "            DestinationConfig: {OnFailure: {Type: SQS, Destination: !GetAtt DLQ.Arn}}\n", "", ""},
		{"destination not a queue", "streams", "Destination: !GetAtt DLQ.Arn", "Destination: !GetAtt Table.Arn", "WorkFunction.Events.Log: DestinationConfig.OnFailure.Destination is !GetAtt Table.Arn, want !GetAtt <Queue>.Arn of a standard queue"},
		{"destination url", "streams", "Destination: !GetAtt DLQ.Arn", "Destination: !Ref DLQ", "DestinationConfig.OnFailure.Destination is !Ref DLQ"},
		{"destination fifo", "streams", "  DLQ:\n    Type: AWS::SQS::Queue\n    Properties:\n", "  DLQ:\n    Type: AWS::SQS::Queue\n    Properties:\n      FifoQueue: true\n", "DestinationConfig.OnFailure.Destination DLQ is a FIFO queue"},

		{"dlq not declared", "queues", "deadLetterTargetArn: !GetAtt DLQ.Arn", "deadLetterTargetArn: !GetAtt Gone.Arn", "Q: RedrivePolicy.deadLetterTargetArn is !GetAtt Gone.Arn"},
		{"queue without sse", "queues", "      SqsManagedSseEnabled: true\n", "", "Q: not encrypted at rest"},
		{"queue sse off", "queues", "SqsManagedSseEnabled: true", "SqsManagedSseEnabled: false", "Q: not encrypted at rest"},
		{"dlq without kms key", "queues", "      KmsMasterKeyId: alias/aws/sqs\n", "", "DLQ: not encrypted at rest"},

		{"function without a log group", "logs", "      LoggingConfig: {LogGroup: !Ref WorkLogs}\n", "", "WorkFunction: LoggingConfig.LogGroup is \"\", want !Ref <LogGroup>"},
		{"log group not a log group", "logs", "LogGroup: !Ref WorkLogs", "LogGroup: !Ref Q", "WorkFunction: LoggingConfig.LogGroup is !Ref Q, want !Ref <LogGroup>"},
		{"log group by name", "logs", "LogGroup: !Ref WorkLogs", "LogGroup: /aws/lambda/work", "WorkFunction: LoggingConfig.LogGroup is \"/aws/lambda/work\""},
		{"log group without retention", "logs", "    Properties: {RetentionInDays: 30}\n", "    Properties: {}\n", "WorkFunction: log group WorkLogs has no RetentionInDays"},
		{"log group without properties", "logs", "    Properties: {RetentionInDays: !Ref Retention}\n", "", "WebFunction: log group WebLogs has no RetentionInDays"},

		{"dlq fifo mismatch", "queues", "      VisibilityTimeout: 60\n", "      VisibilityTimeout: 60\n      FifoQueue: true\n", "Q: dead-letter queue DLQ must be FIFO exactly when the queue is"},

		{"undefined key attribute", "tables", "{AttributeName: g1, KeyType: HASH}", "{AttributeName: g2, KeyType: HASH}", "Table: key attribute g2 has no AttributeDefinitions entry"},
		{"unused attribute", "tables", "{AttributeName: g1, AttributeType: S}", "{AttributeName: g1, AttributeType: S}\n        - {AttributeName: x, AttributeType: N}", "Table: attribute x is defined but is not a key"},

		{"ref unknown", "references", "HOOKGATE_TABLE: !Ref Table", "HOOKGATE_TABLE: !Ref Tabel", "Resources.WebFunction.Properties.Environment.Variables.HOOKGATE_TABLE: Ref Tabel names no resource"},
		{"ref unknown long form", "references", "HOOKGATE_TABLE: !Ref Table", "HOOKGATE_TABLE: {Ref: Tabel}", "Ref Tabel names no resource"},
		{"getatt unknown", "references", "deadLetterTargetArn: !GetAtt DLQ.Arn", "deadLetterTargetArn: !GetAtt DLQueue.Arn", "Resources.Q.Properties.RedrivePolicy.deadLetterTargetArn: GetAtt DLQueue.Arn names no resource"},
		{"getatt stream of an unknown table", "references", "Stream: !GetAtt Table.StreamArn", "Stream: !GetAtt Tabel.StreamArn", "Resources.WorkFunction.Properties.Events.Log.Properties.Stream: GetAtt Tabel.StreamArn names no resource"},
		{"getatt of a parameter", "references", "deadLetterTargetArn: !GetAtt DLQ.Arn", "deadLetterTargetArn: !GetAtt Level.Arn", "GetAtt Level.Arn names no resource"},
		{"sub unknown", "references", "https://${Api}.", "https://${Apis}.", "Outputs.Url.Value: Ref Apis names no resource"},
		{"sub unknown getatt", "references", "https://${Api}.", "https://${Apis.Arn}.", "Outputs.Url.Value: GetAtt Apis.Arn names no resource"},
		{"sub unknown pseudo", "references", "${AWS::Region}", "${AWS::Regio}", "Ref AWS::Regio names no resource, parameter or supported pseudo parameter"},
		{"globals ref", "references", "HOOKGATE_LEVEL: !Ref Level", "HOOKGATE_LEVEL: !Ref Lvl", "Globals.Function.Environment.Variables.HOOKGATE_LEVEL: Ref Lvl"},

		{"secret not NoEcho", "secrets", "ApiSecret: {Type: String, NoEcho: true}", "ApiSecret: {Type: String}", "parameter ApiSecret looks like a secret but is not NoEcho"},
		{"key not NoEcho", "secrets", "Level: {Type: String, Default: INFO}", "Level: {Type: String, Default: INFO}\n  SigningKey: {Type: String, NoEcho: false}", "parameter SigningKey looks like a secret"},

		{"no policies", "policies", "      Policies:\n        - DynamoDBReadPolicy: {TableName: !Ref Table}\n", "", "WebFunction: Environment HOOKGATE_TABLE names Table (AWS::DynamoDB::Table) but the function has no Policies"},
		{"policy for another resource", "policies", "DynamoDBReadPolicy: {TableName: !Ref Table}", "SQSSendMessagePolicy: {QueueName: !GetAtt Q.QueueName}", "WebFunction: Environment HOOKGATE_TABLE names Table (AWS::DynamoDB::Table) but no policy template of the function names it"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(checkBase, c.old) {
				t.Fatalf("bad case: %q is not in the base template", c.old)
			}
			tpl := mustParse(t, strings.Replace(checkBase, c.old, c.new, 1))
			problems := checks[c.check](tpl)
			if c.want == "" {
				if len(problems) > 0 {
					t.Errorf("unexpected problems %q", problems)
				}
				return
			}
			for _, p := range problems {
				if strings.Contains(p, c.want) {
					return
				}
			}
			t.Errorf("check %s: want a problem containing %q, got %q", c.check, c.want, problems)
		})
	}
}

func TestCheckPoliciesQueue(t *testing.T) {
	src := strings.Replace(checkBase, "    Properties:\n      Events:\n        Work:",
		"    Properties:\n      Environment: {Variables: {HOOKGATE_OUT_URL: !Ref DLQ}}\n      Events:\n        Work:", 1)
	problems := checkPolicies(mustParse(t, src))
	want := "WorkFunction: Environment HOOKGATE_OUT_URL names DLQ (AWS::SQS::Queue) but the function has no Policies"
	if !reflect.DeepEqual(problems, []string{want}) {
		t.Errorf("got %q, want [%q]", problems, want)
	}
	// A managed policy or a policy document is accepted without inspection.
	src = strings.Replace(src, "Environment: {Variables: {HOOKGATE_OUT_URL: !Ref DLQ}}", "Environment: {Variables: {HOOKGATE_OUT_URL: !Ref DLQ}}\n      Policies: [AmazonSQSFullAccess]", 1)
	if problems := checkPolicies(mustParse(t, src)); len(problems) > 0 {
		t.Errorf("managed policy: unexpected problems %q", problems)
	}
}

func TestCheckEnvReads(t *testing.T) {
	tpl := mustParse(t, checkBase)
	fn := tpl.Functions()[0] // WebFunction
	if fn.LogicalID != "WebFunction" {
		t.Fatalf("functions are not sorted: %s first", fn.LogicalID)
	}
	cases := []struct {
		name  string
		reads map[string][]string
		want  []string
	}{
		{"set by the function and by Globals", map[string][]string{"HOOKGATE_TABLE": {"a.go"}, "HOOKGATE_SECRET": {"a.go"}, "HOOKGATE_LEVEL": {"b.go"}}, nil},
		{"optional local overrides", map[string][]string{"HOOKGATE_DYNAMODB_ENDPOINT": {"shared/awscfg/awscfg.go"}, "HOOKGATE_SQS_ENDPOINT": {"shared/awscfg/awscfg.go"}}, nil},
		{"not set", map[string][]string{"HOOKGATE_TABLE": {"a.go"}, "HOOKGATE_AGENT": {"functions/web/main.go", "shared/x/x.go"}},
			[]string{"WebFunction: the code reads HOOKGATE_AGENT (functions/web/main.go, shared/x/x.go) but the template does not set it in Environment.Variables"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := checkEnvReads(fn, c.reads); !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestParseMakefile(t *testing.T) {
	src := "FUNCTIONS := AFunction BFunction \\\n  CFunction\n" +
		"build-AFunction: ; $(call bootstrap,a)\n" +
		"build-BFunction:\n\t@echo building\n\n\t$(call bootstrap, b-dir )\n" +
		"# comment\n" +
		"build-CFunction:\n\t@echo nothing\n" +
		"other:\n\t$(call bootstrap,zzz)\n" +
		"define bootstrap\n\tgo build ./functions/$(1)\nendef\n" +
		"build-X := not a target\n"
	got := parseMakefile(src)
	want := makefile{
		targets:   map[string]string{"AFunction": "a", "BFunction": "b-dir", "CFunction": ""},
		functions: []string{"AFunction", "BFunction", "CFunction"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestCheckBuildTargets(t *testing.T) {
	fns := []Function{{LogicalID: "AFunction"}, {LogicalID: "BFunction"}}
	hasMain := func(dir string) error {
		if dir == "a" || dir == "b" {
			return nil
		}
		return errors.New("functions/" + dir + "/main.go does not exist")
	}
	good := "FUNCTIONS := AFunction BFunction\nbuild-AFunction: ; $(call bootstrap,a)\nbuild-BFunction: ; $(call bootstrap,b)\n"
	cases := []struct {
		name, old, new, want string
	}{
		{"good", "", "", ""},
		{"no target", "build-BFunction: ; $(call bootstrap,b)\n", "", "BFunction: the Makefile has no build-BFunction: target"},
		{"no bootstrap call", "build-BFunction: ; $(call bootstrap,b)", "build-BFunction: ; go build .", "BFunction: target build-BFunction does not call $(call bootstrap,<dir>)"},
		{"no main", "bootstrap,b)", "bootstrap,bee)", "BFunction: target build-BFunction builds functions/bee, but functions/bee/main.go does not exist"},
		{"escapes functions/", "bootstrap,b)", "bootstrap,../b)", `BFunction: target build-BFunction builds "../b", not a folder under functions/`},
		{"not in FUNCTIONS", "FUNCTIONS := AFunction BFunction", "FUNCTIONS := AFunction", "BFunction: not listed in FUNCTIONS of the Makefile"},
		{"stale FUNCTIONS entry", "FUNCTIONS := AFunction BFunction", "FUNCTIONS := AFunction BFunction OldFunction", "FUNCTIONS in the Makefile lists OldFunction, which is not a function of the template"},
		{"stale target", "", "build-OldFunction: ; $(call bootstrap,old)\n", "Makefile target build-OldFunction has no function OldFunction in the template"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := good + c.new
			if c.old != "" {
				src = strings.Replace(good, c.old, c.new, 1)
			}
			problems := checkBuildTargets(fns, parseMakefile(src), hasMain)
			if c.want == "" {
				if len(problems) > 0 {
					t.Errorf("unexpected problems %q", problems)
				}
				return
			}
			if len(problems) != 1 || !strings.Contains(problems[0], c.want) {
				t.Errorf("got %q, want one problem containing %q", problems, c.want)
			}
		})
	}
}

func TestMainPackage(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "functions/ok/main.go"), "// Command ok.\npackage main\n\nfunc main() {}\n")
	write(t, filepath.Join(root, "functions/lib/main.go"), "package lib\n")
	write(t, filepath.Join(root, "functions/broken/main.go"), "packag main\n")
	cases := map[string]string{
		"ok":      "",
		"lib":     "functions/lib/main.go is package lib, not package main",
		"missing": "functions/missing/main.go does not exist",
		"broken":  "functions/broken/main.go:",
	}
	for dir, want := range cases {
		err := mainPackage(root, dir)
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: %v", dir, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: got %v, want an error containing %q", dir, err, want)
		}
	}
}

// TestEnvReads runs the real scanner on a small module: it follows imports inside the module,
// reads only string literals (not comments, not test files) and ignores other modules.
func TestEnvReads(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "go.mod"), "module example.com/m\n\ngo 1.21\n")
	write(t, filepath.Join(root, "functions/app/main.go"), `package main

import (
	"os"

	"example.com/m/lib"
)

// HOOKGATE_IN_COMMENT is not read.
func main() { _ = os.Getenv("HOOKGATE_APP") + lib.Name + "HOOKGATE_NOT ALONE" }
`)
	write(t, filepath.Join(root, "lib/lib.go"), "package lib\n\nconst Name = `HOOKGATE_LIB_1`\n")
	write(t, filepath.Join(root, "lib/lib_test.go"), "package lib\n\nconst testOnly = \"HOOKGATE_TEST_ONLY\"\n")
	write(t, filepath.Join(root, "unused/unused.go"), "package unused\n\nconst X = \"HOOKGATE_UNUSED\"\n")
	got, err := envReads(root, "example.com/m", "app")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"HOOKGATE_APP":   {filepath.Join("functions", "app", "main.go")},
		"HOOKGATE_LIB_1": {filepath.Join("lib", "lib.go")},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := envReads(root, "example.com/m", "nope"); err == nil {
		t.Error("missing package: want an error")
	}
}

func mustParse(t *testing.T, src string) *Template {
	t.Helper()
	tpl, err := Parse([]byte(src))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return tpl
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
