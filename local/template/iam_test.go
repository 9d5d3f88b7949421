package template

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// doorKeys lists the functions that unauthenticated callers reach (the inbound doors, the web
// widget and its anonymous stream) and the partition keys (dynamodb:LeadingKeys patterns) each may
// touch. Their table access must be inline statements on the table alone, without Scan, each
// bounded by a LeadingKeys condition inside these patterns.
var doorKeys = map[string][]string{
	"InboundGenericFunction":      {"LIM#*"},
	"InboundWebhookFunction":      {"WS#*#SRC", "WS#*#CFG", "LIM#*", "WS#*#DEDUPE#*"},
	"InboundTelegramFunction":     {"WS#*#SRC", "WS#*#CFG", "LIM#*", "WS#*#DEDUPE#*"},
	"InboundBindingFunction":      {"WS#*#SRC", "WS#*#CFG", "LIM#*", "WS#*#DEDUPE#*"},
	"IntegrationsTriggerFunction": {"WS#*#SRC", "WS#*#CFG", "LIM#*", "WS#*#DEDUPE#*"},
	"WebWidgetFunction":           {"LIM#*"},
	"WebStreamFunction":           {"WS#*#THR#*", "WS#*#EVSEQ", "WS#*#EVSEQ#*"},
}

// unauthenticatedRoutes are the path prefixes of the routes no API key guards: a function serving
// one must be in doorKeys.
var unauthenticatedRoutes = []string{"/v1/inbound/", "/v1/integrations/", "/v1/webhooks/generic/", "/v1/web/"}

// decrypters are the functions that verify, sign or authenticate with stored secrets: only they
// may kms:Decrypt (the worker: agents' secrets; the adapter function: adapters' secrets).
var decrypters = map[string]bool{
	"InboundWebhookFunction": true, "InboundTelegramFunction": true, "InboundBindingFunction": true,
	"IntegrationsTriggerFunction": true, "DeliveryFunction": true, "WorkerFunction": true, "AdapterFunction": true,
}

// doorActions are the item actions a door may be granted; everything else (Scan, wildcards,
// table administration) is refused.
var doorActions = map[string]bool{
	"dynamodb:GetItem": true, "dynamodb:PutItem": true, "dynamodb:UpdateItem": true, "dynamodb:DeleteItem": true,
	"dynamodb:Query": true, "dynamodb:ConditionCheckItem": true,
}

// checkIAM reports the doors' and the widget stream's policies that reach beyond their key
// prefixes, and the functions outside decrypters that can decrypt.
func checkIAM(tpl *Template, keys map[string][]string, decrypt map[string]bool) []string {
	var problems []string
	for _, fn := range tpl.Functions() {
		allowed, door := keys[fn.LogicalID]
		if !door {
			for _, r := range fn.Routes {
				for _, p := range unauthenticatedRoutes {
					if strings.HasPrefix(r.Path, p) {
						problems = append(problems, fmt.Sprintf("%s: serves %s %s without an API key but is not in doorKeys", fn.LogicalID, r.Method, r.Path))
					}
				}
			}
		}
		for i, p := range fn.Policies {
			where := fmt.Sprintf("%s: Policies[%d]", fn.LogicalID, i)
			switch {
			case p.Template != "":
				if door && strings.HasPrefix(p.Template, "DynamoDB") {
					problems = append(problems, fmt.Sprintf("%s: %s grants the whole table (Scan included); use statements bounded by dynamodb:LeadingKeys", where, p.Template))
				}
				if !decrypt[fn.LogicalID] && strings.HasPrefix(p.Template, "KMS") {
					problems = append(problems, fmt.Sprintf("%s: %s, but the function neither signs nor verifies", where, p.Template))
				}
			case !p.Document:
				if door || !decrypt[fn.LogicalID] {
					problems = append(problems, fmt.Sprintf("%s: managed policy %s cannot be checked", where, p.Managed))
				}
			}
			for j, st := range p.Statements {
				w := fmt.Sprintf("%s.Statement[%d]", where, j)
				if st.Effect != "Allow" {
					continue
				}
				if st.Negated {
					problems = append(problems, w+": NotAction/NotResource/NotPrincipal cannot be checked")
					continue
				}
				if !decrypt[fn.LogicalID] && slices.ContainsFunc(st.Actions, grantsDecrypt) {
					problems = append(problems, fmt.Sprintf("%s: %v can decrypt, but the function neither signs nor verifies", w, st.Actions))
				}
				if door && slices.ContainsFunc(st.Actions, touchesTable) {
					problems = append(problems, checkDoorStatement(w, st, allowed)...)
				}
			}
		}
	}
	return problems
}

func grantsDecrypt(a string) bool {
	a = strings.ToLower(a)
	return a == "*" || a == "kms:*" || a == "kms:decrypt" || (strings.HasPrefix(a, "kms:") && strings.Contains(a, "*"))
}

func touchesTable(a string) bool {
	return a == "*" || strings.HasPrefix(strings.ToLower(a), "dynamodb:")
}

func checkDoorStatement(w string, st Statement, allowed []string) []string {
	var problems []string
	for _, a := range st.Actions {
		if !doorActions[a] {
			problems = append(problems, fmt.Sprintf("%s: grants %s", w, a))
		}
	}
	for _, r := range st.Resources {
		if r.Kind != KindGetAtt || r.GetAtt != [2]string{"Table", "Arn"} {
			problems = append(problems, fmt.Sprintf("%s: Resource %s is not the table alone", w, r))
		}
	}
	var leading []Value
	for op, keys := range st.Condition {
		if op == "ForAllValues:StringLike" || op == "ForAllValues:StringEquals" {
			leading = append(leading, keys["dynamodb:LeadingKeys"]...)
		}
	}
	if len(leading) == 0 {
		problems = append(problems, w+": no ForAllValues dynamodb:LeadingKeys condition")
	}
	for _, v := range leading {
		if v.Kind != KindLiteral || !slices.Contains(allowed, v.Literal) {
			problems = append(problems, fmt.Sprintf("%s: dynamodb:LeadingKeys %s is beyond %v", w, v, allowed))
		}
	}
	return problems
}

func TestRepoTemplateIAM(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := Load(root + "/template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range checkIAM(tpl, doorKeys, decrypters) {
		t.Error(p)
	}
	for id := range doorKeys {
		if _, ok := tpl.Resources[id]; !ok {
			t.Errorf("doorKeys names %s, which the template does not declare", id)
		}
	}
}

// iamBase is a door, the widget stream and a worker whose policies every IAM check accepts; the
// cases below break it one way each.
const iamBase = `
Resources:
  Table: {Type: AWS::DynamoDB::Table, Properties: {KeySchema: [{AttributeName: pk, KeyType: HASH}], AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]}}
  Key: {Type: AWS::KMS::Key}
  DoorFunction:
    Type: AWS::Serverless::Function
    Properties:
      Policies:
        - Statement:
            - Effect: Allow
              Action: dynamodb:GetItem
              Resource: !GetAtt Table.Arn
              Condition: {ForAllValues:StringLike: {dynamodb:LeadingKeys: ["WS#*#SRC"]}}
            - Effect: Allow
              Action: kms:Decrypt
              Resource: !GetAtt Key.Arn
      Events:
        In: {Type: HttpApi, Properties: {Path: /v1/inbound/x, Method: POST}}
  StreamFunction:
    Type: AWS::Serverless::Function
    Properties:
      Policies:
        - Statement:
            - Effect: Allow
              Action: [dynamodb:GetItem, dynamodb:Query]
              Resource: !GetAtt Table.Arn
              Condition: {ForAllValues:StringLike: {dynamodb:LeadingKeys: ["WS#*#THR#*"]}}
      Events:
        In: {Type: HttpApi, Properties: {Path: /v1/web/stream, Method: GET}}
  WorkFunction:
    Type: AWS::Serverless::Function
    Properties:
      Policies:
        - DynamoDBCrudPolicy: {TableName: !Ref Table}
`

func TestCheckIAM(t *testing.T) {
	keys := map[string][]string{"DoorFunction": {"WS#*#SRC"}, "StreamFunction": {"WS#*#THR#*"}}
	decrypt := map[string]bool{"DoorFunction": true}
	if p := checkIAM(mustParse(t, iamBase), keys, decrypt); len(p) != 0 {
		t.Fatalf("the base has problems: %v", p)
	}
	cases := []struct{ name, from, to, want string }{
		{"door scans", "Action: dynamodb:GetItem\n", "Action: [dynamodb:GetItem, dynamodb:Scan]\n", "grants dynamodb:Scan"},
		{"door wildcard", "Action: dynamodb:GetItem\n", "Action: dynamodb:*\n", "grants dynamodb:*"},
		{"door with a policy template", "      Events:\n        In: {Type: HttpApi, Properties: {Path: /v1/inbound/x",
			"        - DynamoDBReadPolicy: {TableName: !Ref Table}\n      Events:\n        In: {Type: HttpApi, Properties: {Path: /v1/inbound/x", "DynamoDBReadPolicy grants the whole table"},
		{"door beyond its keys", `["WS#*#SRC"]`, `["WS#*#SRC", "WS#*#SUBS"]`, `LeadingKeys "WS#*#SUBS" is beyond`},
		{"door on any key", `["WS#*#SRC"]`, `["*"]`, `LeadingKeys "*" is beyond`},
		{"door without a condition", "              Condition: {ForAllValues:StringLike: {dynamodb:LeadingKeys: [\"WS#*#SRC\"]}}\n", "", "no ForAllValues dynamodb:LeadingKeys"},
		{"door on an index", "Action: dynamodb:GetItem\n              Resource: !GetAtt Table.Arn", "Action: dynamodb:GetItem\n              Resource: [!GetAtt Table.Arn, !Sub \"${Table.Arn}/index/*\"]", "is not the table alone"},
		{"stream scans", "Action: [dynamodb:GetItem, dynamodb:Query]", "Action: [dynamodb:GetItem, dynamodb:Query, dynamodb:Scan]", "StreamFunction: Policies[0].Statement[0]: grants dynamodb:Scan"},
		{"stream decrypts", `{dynamodb:LeadingKeys: ["WS#*#THR#*"]}}` + "\n",
			`{dynamodb:LeadingKeys: ["WS#*#THR#*"]}}` + "\n            - {Effect: Allow, Action: kms:Decrypt, Resource: !GetAtt Key.Arn}\n", "StreamFunction: Policies[0].Statement[1]: [kms:Decrypt] can decrypt"},
		{"worker decrypts", "        - DynamoDBCrudPolicy: {TableName: !Ref Table}\n", "        - DynamoDBCrudPolicy: {TableName: !Ref Table}\n        - KMSDecryptPolicy: {KeyId: !Ref Key}\n", "WorkFunction: Policies[1]: KMSDecryptPolicy"},
		{"worker kms wildcard", "        - DynamoDBCrudPolicy: {TableName: !Ref Table}\n", "        - DynamoDBCrudPolicy: {TableName: !Ref Table}\n        - Statement: [{Effect: Allow, Action: \"kms:*\", Resource: \"*\"}]\n", "WorkFunction: Policies[1].Statement[0]: [kms:*] can decrypt"},
		{"unlisted door", "Path: /v1/inbound/x", `Path: "/v1/webhooks/generic/{ws}"`, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(iamBase, c.from) {
				t.Fatalf("the base has no %q", c.from)
			}
			src := strings.Replace(iamBase, c.from, c.to, 1)
			if c.name == "unlisted door" {
				src = strings.Replace(src, "DoorFunction", "OtherFunction", 1)
				c.want = "OtherFunction: serves POST /v1/webhooks/generic/{ws} without an API key"
			}
			p := checkIAM(mustParse(t, src), keys, decrypt)
			if !slices.ContainsFunc(p, func(s string) bool { return strings.Contains(s, c.want) }) {
				t.Errorf("want a problem with %q, got %v", c.want, p)
			}
		})
	}
}
