package template

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestAccessLogs: the HttpApi's optional access logs (ApiAccessLogs) write a JSON line that never
// holds the query string (a widget token can ride in it), to a log group of the template that sets
// RetentionInDays and exists under the same condition.
func TestAccessLogs(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if problems := checkAccessLogs(data); len(problems) > 0 {
		t.Fatalf("template.yaml:\n%s", strings.Join(problems, "\n"))
	}
	// The check fails for what it guards against.
	mutations := []struct{ name, from, to, want string }{
		{"query string variable", `"path":"$context.path"`, `"path":"$context.path","q":"$request.querystring.token"`, "query string"},
		{"request override", `"path":"$context.path"`, `"path":"$context.requestOverride.querystring.t"`, "query string"},
		{"no path", `"path":"$context.path",`, ``, "$context.path"},
		{"log group without retention", "      LogGroupName: !Sub /aws/apigateway/${AWS::StackName}/access\n      RetentionInDays: !Ref LogRetentionDays\n", "      LogGroupName: !Sub /aws/apigateway/${AWS::StackName}/access\n", "RetentionInDays"},
		{"log group always on", "    Condition: HasApiAccessLogs\n    Properties:\n      LogGroupName: !Sub /aws/apigateway", "    Properties:\n      LogGroupName: !Sub /aws/apigateway", "condition"},
	}
	for _, m := range mutations {
		bad := strings.Replace(string(data), m.from, m.to, 1)
		if bad == string(data) {
			t.Fatalf("%s: mutation does not apply", m.name)
		}
		problems := checkAccessLogs([]byte(bad))
		if !strings.Contains(strings.Join(problems, "\n"), m.want) {
			t.Errorf("%s: problems %q, want one about %s", m.name, problems, m.want)
		}
	}
}

// queryVariables are the access log variables that can hold a query string.
var queryVariables = regexp.MustCompile(`(?i)querystring|requestoverride|\$request\.|\$context\.(fullpath|rawpath|requesturl|url)\b`)

// checkAccessLogs checks HttpApi's AccessLogSettings: !If [<condition>, {DestinationArn: !GetAtt
// <log group>.Arn, Format: <JSON>}, !Ref AWS::NoValue].
func checkAccessLogs(data []byte) []string {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return []string{err.Error()}
	}
	resources := child(doc.Content[0], "Resources")
	settings := child(child(child(resources, "HttpApi"), "Properties"), "AccessLogSettings")
	if settings == nil || settings.Tag != "!If" || len(settings.Content) != 3 {
		return []string{"HttpApi.Properties.AccessLogSettings is not !If [condition, settings, !Ref AWS::NoValue]"}
	}
	cond, on := settings.Content[0].Value, settings.Content[1]
	var problems []string
	format := child(on, "Format")
	if format == nil {
		return []string{"AccessLogSettings has no Format"}
	}
	if !json.Valid([]byte(format.Value)) {
		problems = append(problems, "the access log Format is not JSON")
	}
	if m := queryVariables.FindString(format.Value); m != "" {
		problems = append(problems, fmt.Sprintf("the access log Format holds %q, which can carry the query string", m))
	}
	for _, v := range []string{"$context.requestId", "$context.routeKey", "$context.path", "$context.status", "$context.responseLatency",
		"$context.identity.sourceIp", "$context.identity.userAgent", "$context.integrationErrorMessage"} {
		if !strings.Contains(format.Value, `"`+v+`"`) {
			problems = append(problems, "the access log Format lacks "+v)
		}
	}
	dest := child(on, "DestinationArn")
	if dest == nil || dest.Tag != "!GetAtt" || !strings.HasSuffix(dest.Value, ".Arn") {
		return append(problems, "AccessLogSettings.DestinationArn is not !GetAtt <LogGroup>.Arn")
	}
	group := child(resources, strings.TrimSuffix(dest.Value, ".Arn"))
	switch {
	case group == nil || child(group, "Type") == nil || child(group, "Type").Value != "AWS::Logs::LogGroup":
		problems = append(problems, "the access logs' destination "+dest.Value+" is not an AWS::Logs::LogGroup of the template")
	case child(child(group, "Properties"), "RetentionInDays") == nil:
		problems = append(problems, "the access log group has no RetentionInDays")
	case child(group, "Condition") == nil || child(group, "Condition").Value != cond:
		problems = append(problems, "the access log group is not created under the access logs' condition "+cond)
	}
	return problems
}

// child is the value of key in a mapping node, or nil.
func child(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}
