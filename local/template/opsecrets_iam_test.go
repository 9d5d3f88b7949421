package template

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/hookgate/hookgate/shared/opsecrets"
)

// The stack's own secrets from SSM or Secrets Manager (SecretsSource): the AWS::IAM::Policy
// resources that grant them exist only under the SecretsFromStore condition; each lets its roles
// read only the names under SecretsPrefix that their functions declare, and decrypt only through
// SSM or Secrets Manager (kms:ViaService); and every function that declares an operator secret is
// granted it.
func TestOperatorSecretsPolicies(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := Load(root + "/template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(root + "/template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range checkOperatorSecretsPolicies(tpl, raw) {
		t.Error(p)
	}
}

func checkOperatorSecretsPolicies(tpl *Template, raw []byte) []string {
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return []string{err.Error()}
	}
	byEnv := map[string]string{}
	for _, s := range opsecrets.Secrets() {
		byEnv[s.Env] = s.Name
	}
	fns := map[string]Function{}
	for _, fn := range tpl.Functions() {
		fns[fn.LogicalID] = fn
	}
	granted := map[string]map[string]bool{} // function → secret names it may read
	var problems []string
	resources := obj{n: mapValue(doc.Content[0], "Resources")}
	name := regexp.MustCompile(`\$\{SecretsPrefix\}([A-Za-z]+)`)
	for _, id := range resources.keys() {
		res := mapValue(resources.n, id)
		if scalarOf(mapValue(res, "Type")) != "AWS::IAM::Policy" {
			continue
		}
		if c := scalarOf(mapValue(res, "Condition")); c != "SecretsFromStore" {
			problems = append(problems, fmt.Sprintf("%s: Condition %q, want SecretsFromStore", id, c))
		}
		props := mapValue(res, "Properties")
		var roles []string
		for _, r := range scalars(mapValue(props, "Roles")) {
			fn := strings.TrimSuffix(r, "Role")
			if _, ok := fns[fn]; !ok || fn == r {
				problems = append(problems, fmt.Sprintf("%s: role %s is no function's", id, r))
				continue
			}
			roles = append(roles, fn)
		}
		st := mapValue(mapValue(props, "PolicyDocument"), "Statement")
		if st == nil {
			problems = append(problems, id+": no Statement")
			continue
		}
		for i, s := range st.Content {
			w := fmt.Sprintf("%s.Statement[%d]", id, i)
			actions := scalars(mapValue(s, "Action"))
			switch {
			case slices.Equal(actions, []string{"kms:Decrypt"}):
				if !slices.ContainsFunc(scalars(mapValue(s, "Condition")), func(v string) bool { return v == "kms:ViaService" }) {
					problems = append(problems, w+": kms:Decrypt without a kms:ViaService condition")
				}
			default:
				for _, a := range actions {
					if a != "SecretsFromSSM" && a != "ssm:GetParameter" && a != "secretsmanager:GetSecretValue" {
						problems = append(problems, fmt.Sprintf("%s: grants %s", w, a))
					}
				}
				for _, r := range scalars(mapValue(s, "Resource")) {
					if r == "SecretsFromSSM" {
						continue
					}
					m := name.FindStringSubmatch(r)
					if m == nil || !(strings.Contains(r, ":parameter${SecretsPrefix}") || strings.Contains(r, ":secret:${SecretsPrefix}")) {
						problems = append(problems, fmt.Sprintf("%s: Resource %s is not a parameter or secret under SecretsPrefix", w, r))
						continue
					}
					for _, fn := range roles {
						if granted[fn] == nil {
							granted[fn] = map[string]bool{}
						}
						granted[fn][m[1]] = true
					}
				}
			}
		}
	}
	for _, fn := range tpl.Functions() {
		declared := map[string]bool{}
		for env := range fn.Env {
			if n, ok := byEnv[env]; ok {
				declared[n] = true
				if !granted[fn.LogicalID][n] {
					problems = append(problems, fmt.Sprintf("%s: declares %s but may not read %s from SSM or Secrets Manager", fn.LogicalID, env, n))
				}
			}
		}
		for n := range granted[fn.LogicalID] {
			if !declared[n] {
				problems = append(problems, fmt.Sprintf("%s: may read %s but does not use it", fn.LogicalID, n))
			}
		}
	}
	return problems
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
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

func scalarOf(n *yaml.Node) string {
	if n == nil || n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}

// scalars are every scalar under n (keys of mappings included), in order.
func scalars(n *yaml.Node) []string {
	if n == nil {
		return nil
	}
	if n.Kind == yaml.ScalarNode {
		return []string{n.Value}
	}
	var out []string
	for _, c := range n.Content {
		out = append(out, scalars(c)...)
	}
	return out
}
