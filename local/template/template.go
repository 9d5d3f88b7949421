// Package template parses template.yaml into typed views of its functions, routes, event sources, tables
// and queues, for local mode and the template test.
package template

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Template is a parsed SAM template. Only the Ref, Fn::GetAtt and Fn::Sub intrinsics are
// supported; any other intrinsic anywhere in the template is a parse error.
type Template struct {
	Description string
	Parameters  map[string]Parameter // by name
	Resources   map[string]Resource  // every resource, by logical id
	Outputs     map[string]Output    // by name

	functions  []Function
	tables     []Table
	queues     []Queue
	logGroups  []LogGroup
	alarms     []Alarm
	references []Reference
}

// Parameter is one entry of the Parameters section.
type Parameter struct {
	Name           string
	Type           string
	Default        string
	HasDefault     bool
	NoEcho         bool
	Description    string
	AllowedValues  []string
	AllowedPattern string
}

// Resource is the logical id and type of any resource of the template.
type Resource struct {
	LogicalID string
	Type      string
}

// Output is one entry of the Outputs section.
type Output struct {
	Name        string
	Description string
	Value       Value
}

// Resource types with typed views.
const (
	TypeFunction = "AWS::Serverless::Function"
	TypeHTTPAPI  = "AWS::Serverless::HttpApi"
	TypeTable    = "AWS::DynamoDB::Table"
	TypeQueue    = "AWS::SQS::Queue"
	TypeLogGroup = "AWS::Logs::LogGroup"
)

// Functions returns the AWS::Serverless::Function resources, Globals.Function merged in, sorted by
// logical id. The slice is a copy; the values it holds share maps and slices with the Template.
func (t *Template) Functions() []Function { return append([]Function(nil), t.functions...) }

// RouteKeys returns the HttpApi route keys ("METHOD /path") of the function logicalID, sorted: what
// its handler must serve.
func (t *Template) RouteKeys(logicalID string) []string {
	var keys []string
	for _, fn := range t.functions {
		if fn.LogicalID == logicalID {
			for _, r := range fn.Routes {
				keys = append(keys, r.Method+" "+r.Path)
			}
		}
	}
	slices.Sort(keys)
	return keys
}

// Tables returns the AWS::DynamoDB::Table resources sorted by logical id.
func (t *Template) Tables() []Table { return append([]Table(nil), t.tables...) }

// Alarms returns the CloudWatch alarms, sorted by logical id.
func (t *Template) Alarms() []Alarm { return append([]Alarm(nil), t.alarms...) }

// Queues returns the AWS::SQS::Queue resources sorted by logical id.
func (t *Template) Queues() []Queue { return append([]Queue(nil), t.queues...) }

// LogGroups returns the AWS::Logs::LogGroup resources, sorted by logical id.
func (t *Template) LogGroups() []LogGroup { return append([]LogGroup(nil), t.logGroups...) }

// References returns every name used by a Ref, GetAtt or Sub anywhere in the template (Globals,
// Resources, Outputs, ...), sorted by template path.
func (t *Template) References() []Reference { return append([]Reference(nil), t.references...) }

// ParameterValues returns the value of every parameter: the override when given, else the
// default. It fails on overrides of undeclared parameters and on parameters with neither.
func (t *Template) ParameterValues(overrides map[string]string) (map[string]string, error) {
	out := make(map[string]string, len(t.Parameters))
	var errs []error
	for name := range overrides {
		if _, ok := t.Parameters[name]; !ok {
			errs = append(errs, fmt.Errorf("parameter %s is not declared in the template", name))
		}
	}
	for name, p := range t.Parameters {
		if v, ok := overrides[name]; ok {
			out[name] = v
		} else if p.HasDefault {
			out[name] = p.Default
		} else {
			errs = append(errs, fmt.Errorf("parameter %s has no default and no value", name))
		}
	}
	if err := errors.Join(sortErrors(errs)...); err != nil {
		return nil, err
	}
	return out, nil
}

// Load reads and parses the template at path.
func Load(path string) (*Template, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	t, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// Parse parses a SAM template.
func Parse(data []byte) (*Template, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, errors.New("template: empty document")
	}
	root := deref(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		return nil, errors.New("template: top level is not a mapping")
	}
	t := &Template{
		Parameters: map[string]Parameter{},
		Resources:  map[string]Resource{},
		Outputs:    map[string]Output{},
	}
	if err := walk(root, "", &t.references); err != nil {
		return nil, err
	}
	sort.SliceStable(t.references, func(i, j int) bool { return t.references[i].Where < t.references[j].Where })
	top := obj{n: root}
	var err error
	if t.Description, err = top.str("Description"); err != nil {
		return nil, err
	}
	if err := t.parseParameters(top); err != nil {
		return nil, err
	}
	if err := t.parseResources(top); err != nil {
		return nil, err
	}
	if err := t.parseOutputs(top); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *Template) parseParameters(top obj) error {
	params, err := top.child("Parameters")
	if err != nil {
		return err
	}
	for _, name := range params.keys() {
		p, err := params.child(name)
		if err != nil {
			return err
		}
		param := Parameter{Name: name}
		if param.Type, err = p.str("Type"); err != nil {
			return err
		}
		if param.Type == "" {
			return fmt.Errorf("%s: Type is required", p.where)
		}
		if param.Default, err = p.str("Default"); err != nil {
			return err
		}
		param.HasDefault = p.get("Default") != nil
		if param.NoEcho, err = p.boolean("NoEcho", false); err != nil {
			return err
		}
		if param.Description, err = p.str("Description"); err != nil {
			return err
		}
		if param.AllowedValues, err = p.strs("AllowedValues"); err != nil {
			return err
		}
		if param.AllowedPattern, err = p.str("AllowedPattern"); err != nil {
			return err
		}
		t.Parameters[name] = param
	}
	return nil
}

func (t *Template) parseResources(top obj) error {
	resources, err := top.child("Resources")
	if err != nil {
		return err
	}
	if len(resources.keys()) == 0 {
		return errors.New("template: Resources is missing or empty")
	}
	globals, err := top.child("Globals")
	if err != nil {
		return err
	}
	globalFn, err := globals.child("Function")
	if err != nil {
		return err
	}
	for _, id := range resources.keys() {
		res, err := resources.child(id)
		if err != nil {
			return err
		}
		typ, err := res.str("Type")
		if err != nil {
			return err
		}
		if typ == "" {
			return fmt.Errorf("%s: Type is required", res.where)
		}
		if _, dup := t.Parameters[id]; dup {
			return fmt.Errorf("%s: logical id is also a parameter name", res.where)
		}
		t.Resources[id] = Resource{LogicalID: id, Type: typ}
		switch typ {
		case TypeFunction:
			fn, err := parseFunction(id, res, globalFn.n)
			if err != nil {
				return err
			}
			t.functions = append(t.functions, fn)
		case TypeTable:
			tbl, err := parseTable(id, res)
			if err != nil {
				return err
			}
			t.tables = append(t.tables, tbl)
		case TypeQueue:
			q, err := parseQueue(id, res)
			if err != nil {
				return err
			}
			t.queues = append(t.queues, q)
		case TypeLogGroup:
			lg, err := parseLogGroup(id, res)
			if err != nil {
				return err
			}
			t.logGroups = append(t.logGroups, lg)
		case TypeAlarm:
			a, err := parseAlarm(id, res)
			if err != nil {
				return err
			}
			t.alarms = append(t.alarms, a)
		}
	}
	sort.Slice(t.functions, func(i, j int) bool { return t.functions[i].LogicalID < t.functions[j].LogicalID })
	sort.Slice(t.tables, func(i, j int) bool { return t.tables[i].LogicalID < t.tables[j].LogicalID })
	sort.Slice(t.queues, func(i, j int) bool { return t.queues[i].LogicalID < t.queues[j].LogicalID })
	sort.Slice(t.logGroups, func(i, j int) bool { return t.logGroups[i].LogicalID < t.logGroups[j].LogicalID })
	sort.Slice(t.alarms, func(i, j int) bool { return t.alarms[i].LogicalID < t.alarms[j].LogicalID })
	return nil
}

func (t *Template) parseOutputs(top obj) error {
	outputs, err := top.child("Outputs")
	if err != nil {
		return err
	}
	for _, name := range outputs.keys() {
		o, err := outputs.child(name)
		if err != nil {
			return err
		}
		out := Output{Name: name}
		if out.Description, err = o.str("Description"); err != nil {
			return err
		}
		var ok bool
		if out.Value, ok, err = o.value("Value"); err != nil {
			return err
		} else if !ok {
			return fmt.Errorf("%s: Value is required", o.where)
		}
		t.Outputs[name] = out
	}
	return nil
}

// walk checks the whole document: mapping keys are unique scalars and every intrinsic function is
// a supported one. It collects the references of the intrinsics it meets.
func walk(n *yaml.Node, where string, refs *[]Reference) error {
	n = deref(n)
	if name, arg := intrinsic(n); conditionFunctions[name] {
		// A condition's operands hold the references: walk them (Fn::If's first item is a
		// condition's name, a plain string). The short form's operands are the tagged node's own.
		if arg == n {
			untagged := *n
			untagged.Tag = ""
			arg = &untagged
		}
		return walk(arg, join(where, name), refs)
	}
	if name, _ := intrinsic(n); name != "" {
		v, err := parseValue(n, where)
		if err != nil {
			return err
		}
		for _, r := range v.References() {
			r.Where = where
			*refs = append(*refs, r)
		}
		return nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		seen := make(map[string]bool, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := deref(n.Content[i])
			if k.Kind != yaml.ScalarNode {
				return fmt.Errorf("%s: mapping key is not a scalar (line %d)", orTop(where), k.Line)
			}
			if k.Value == "<<" {
				return fmt.Errorf("%s: YAML merge keys (<<) are not supported (line %d)", orTop(where), k.Line)
			}
			if seen[k.Value] {
				return fmt.Errorf("%s: duplicate key %q (line %d)", orTop(where), k.Value, k.Line)
			}
			seen[k.Value] = true
			if err := walk(n.Content[i+1], join(where, k.Value), refs); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if err := walk(c, where+"["+strconv.Itoa(i)+"]", refs); err != nil {
				return err
			}
		}
	}
	return nil
}

// conditionFunctions are the intrinsics of Conditions and of optional properties: their
// references are checked, their values not computed.
var conditionFunctions = map[string]bool{"Fn::If": true, "Fn::Equals": true, "Fn::Not": true, "Fn::And": true, "Fn::Or": true}

func join(where, key string) string {
	if where == "" {
		return key
	}
	return where + "." + key
}

func orTop(where string) string {
	if where == "" {
		return "template"
	}
	return where
}

// obj is a mapping of the template and its path, for messages. A nil n is an absent mapping:
// every lookup in it finds nothing.
type obj struct {
	n     *yaml.Node
	where string
}

// get returns the value of key, or nil.
func (o obj) get(key string) *yaml.Node {
	if o.n == nil {
		return nil
	}
	for i := 0; i+1 < len(o.n.Content); i += 2 {
		if deref(o.n.Content[i]).Value == key {
			return deref(o.n.Content[i+1])
		}
	}
	return nil
}

// keys returns the keys in document order.
func (o obj) keys() []string {
	if o.n == nil {
		return nil
	}
	keys := make([]string, 0, len(o.n.Content)/2)
	for i := 0; i+1 < len(o.n.Content); i += 2 {
		keys = append(keys, deref(o.n.Content[i]).Value)
	}
	return keys
}

// child returns the mapping under key; it is absent (n nil) when key is absent or null.
func (o obj) child(key string) (obj, error) {
	where := join(o.where, key)
	n := o.get(key)
	if n == nil || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null") {
		return obj{where: where}, nil
	}
	if name, _ := intrinsic(n); name != "" || n.Kind != yaml.MappingNode {
		return obj{}, fmt.Errorf("%s: expected a mapping", where)
	}
	return obj{n: n, where: where}, nil
}

// value returns the Value under key and whether the key is present.
func (o obj) value(key string) (Value, bool, error) {
	n := o.get(key)
	if n == nil {
		return Value{}, false, nil
	}
	v, err := parseValue(n, join(o.where, key))
	return v, true, err
}

// str returns the literal string under key, "" when absent; intrinsics are an error.
func (o obj) str(key string) (string, error) {
	v, ok, err := o.value(key)
	if err != nil || !ok {
		return "", err
	}
	if v.Kind != KindLiteral {
		return "", fmt.Errorf("%s: must be a literal, not %s", join(o.where, key), v)
	}
	return v.Literal, nil
}

// integer returns the literal integer under key, def when absent.
func (o obj) integer(key string, def int) (int, error) {
	s, err := o.str(key)
	if err != nil {
		return 0, err
	}
	if o.get(key) == nil {
		return def, nil
	}
	i, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not an integer", join(o.where, key), s)
	}
	return i, nil
}

// boolean returns the literal boolean under key (true/false, any case), def when absent.
func (o obj) boolean(key string, def bool) (bool, error) {
	s, err := o.str(key)
	if err != nil {
		return false, err
	}
	switch {
	case o.get(key) == nil:
		return def, nil
	case strings.EqualFold(s, "true"):
		return true, nil
	case strings.EqualFold(s, "false"):
		return false, nil
	}
	return false, fmt.Errorf("%s: %q is not a boolean", join(o.where, key), s)
}

// strs returns the literal strings of the list under key; a single scalar is a list of one.
func (o obj) strs(key string) ([]string, error) {
	n := o.get(key)
	if n == nil {
		return nil, nil
	}
	where := join(o.where, key)
	if n.Kind != yaml.SequenceNode {
		s, err := o.str(key)
		if err != nil {
			return nil, err
		}
		return []string{s}, nil
	}
	out := make([]string, 0, len(n.Content))
	for i, c := range n.Content {
		w := where + "[" + strconv.Itoa(i) + "]"
		v, err := parseValue(c, w)
		if err != nil {
			return nil, err
		}
		if v.Kind != KindLiteral {
			return nil, fmt.Errorf("%s: must be a literal, not %s", w, v)
		}
		out = append(out, v.Literal)
	}
	return out, nil
}

// list returns the mappings of the list under key.
func (o obj) list(key string) ([]obj, error) {
	n := o.get(key)
	if n == nil {
		return nil, nil
	}
	where := join(o.where, key)
	if n.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("%s: expected a list", where)
	}
	out := make([]obj, 0, len(n.Content))
	for i, c := range n.Content {
		c = deref(c)
		w := where + "[" + strconv.Itoa(i) + "]"
		if name, _ := intrinsic(c); name != "" || c.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s: expected a mapping", w)
		}
		out = append(out, obj{n: c, where: w})
	}
	return out, nil
}

// mergeGlobals merges a Globals section into a resource's Properties: mappings are merged key
// by key (so Environment.Variables merge per variable), anything else is taken from the
// resource when it sets it.
func mergeGlobals(global, local *yaml.Node) *yaml.Node {
	global, local = deref(global), deref(local)
	if local == nil {
		return global
	}
	if global == nil || !plainMapping(global) || !plainMapping(local) {
		return local
	}
	g, l := obj{n: global}, obj{n: local}
	out := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: local.Line, Column: local.Column}
	for i := 0; i+1 < len(global.Content); i += 2 {
		k := deref(global.Content[i])
		out.Content = append(out.Content, k, mergeGlobals(global.Content[i+1], l.get(k.Value)))
	}
	for i := 0; i+1 < len(local.Content); i += 2 {
		k := deref(local.Content[i])
		if g.get(k.Value) == nil {
			out.Content = append(out.Content, k, local.Content[i+1])
		}
	}
	return out
}

func plainMapping(n *yaml.Node) bool {
	name, _ := intrinsic(n)
	return name == "" && n.Kind == yaml.MappingNode
}

func sortErrors(errs []error) []error {
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errs
}
