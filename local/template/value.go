package template

import (
	"fmt"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Kind tells which form a Value has.
type Kind int

// The forms of a Value: a plain literal or one of the supported intrinsic functions.
const (
	KindLiteral Kind = iota // a plain scalar: strings, numbers ("10") and booleans ("true")
	KindRef                 // !Ref Name / {Ref: Name}
	KindGetAtt              // !GetAtt Resource.Attr / {"Fn::GetAtt": [Resource, Attr]}
	KindSub                 // !Sub "text ${Name}" / {"Fn::Sub": ...}, optionally with variables
)

// Value is a scalar property of the template: a literal or a Ref, GetAtt or Sub intrinsic.
// The zero Value is the empty literal.
type Value struct {
	Kind    Kind
	Literal string           // KindLiteral
	Ref     string           // KindRef: logical id, parameter or pseudo parameter (AWS::Region)
	GetAtt  [2]string        // KindGetAtt: logical id and attribute (Arn, QueueName, ...)
	Sub     string           // KindSub: the format string
	SubVars map[string]Value // KindSub: the variables of the list form, nil for the string form
}

// Lit returns a literal Value.
func Lit(s string) Value { return Value{Kind: KindLiteral, Literal: s} }

// String renders the Value in the short form of the template, for messages.
func (v Value) String() string {
	switch v.Kind {
	case KindRef:
		return "!Ref " + v.Ref
	case KindGetAtt:
		return "!GetAtt " + v.GetAtt[0] + "." + v.GetAtt[1]
	case KindSub:
		if len(v.SubVars) > 0 {
			return fmt.Sprintf("!Sub [%q, %d variables]", v.Sub, len(v.SubVars))
		}
		return fmt.Sprintf("!Sub %q", v.Sub)
	default:
		return fmt.Sprintf("%q", v.Literal)
	}
}

// Reference is one name used by an intrinsic: !Ref Name (Attr empty), !GetAtt Name.Attr, or
// ${Name} / ${Name.Attr} inside a !Sub (variables of the !Sub list form are not references).
type Reference struct {
	Where string // template path of the value, such as Resources.Fn.Properties.Environment.Variables.X
	Name  string // logical id, parameter or pseudo parameter
	Attr  string // attribute for GetAtt forms, "" for Ref forms
}

// References lists the names the Value uses, in order of appearance. Where is left empty.
func (v Value) References() []Reference {
	switch v.Kind {
	case KindRef:
		return []Reference{{Name: v.Ref}}
	case KindGetAtt:
		return []Reference{{Name: v.GetAtt[0], Attr: v.GetAtt[1]}}
	case KindSub:
		var refs []Reference
		// Parse validated the format string, so the error is impossible here.
		parts, _ := parseSub(v.Sub)
		for _, p := range parts {
			if !p.isVar {
				continue
			}
			if _, local := v.SubVars[p.text]; local {
				continue
			}
			name, attr := splitSubVar(p.text)
			refs = append(refs, Reference{Name: name, Attr: attr})
		}
		names := make([]string, 0, len(v.SubVars))
		for name := range v.SubVars {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			refs = append(refs, v.SubVars[name].References()...)
		}
		return refs
	default:
		return nil
	}
}

// Resolver supplies the values of the names intrinsics use. Ref is called for logical ids,
// parameters and pseudo parameters (AWS::Region, ...); GetAtt for resource attributes.
type Resolver interface {
	Ref(name string) (string, error)
	GetAtt(resource, attr string) (string, error)
}

// ResolverFuncs adapts two functions to a Resolver. A nil function fails every lookup.
type ResolverFuncs struct {
	RefFunc    func(name string) (string, error)
	GetAttFunc func(resource, attr string) (string, error)
}

// Ref calls RefFunc.
func (f ResolverFuncs) Ref(name string) (string, error) {
	if f.RefFunc == nil {
		return "", fmt.Errorf("no value for !Ref %s", name)
	}
	return f.RefFunc(name)
}

// GetAtt calls GetAttFunc.
func (f ResolverFuncs) GetAtt(resource, attr string) (string, error) {
	if f.GetAttFunc == nil {
		return "", fmt.Errorf("no value for !GetAtt %s.%s", resource, attr)
	}
	return f.GetAttFunc(resource, attr)
}

// Resolve computes the string a Value stands for, asking r for every name it uses.
func Resolve(v Value, r Resolver) (string, error) {
	switch v.Kind {
	case KindLiteral:
		return v.Literal, nil
	case KindRef:
		s, err := r.Ref(v.Ref)
		if err != nil {
			return "", fmt.Errorf("resolve !Ref %s: %w", v.Ref, err)
		}
		return s, nil
	case KindGetAtt:
		s, err := r.GetAtt(v.GetAtt[0], v.GetAtt[1])
		if err != nil {
			return "", fmt.Errorf("resolve !GetAtt %s.%s: %w", v.GetAtt[0], v.GetAtt[1], err)
		}
		return s, nil
	case KindSub:
		parts, err := parseSub(v.Sub)
		if err != nil {
			return "", err
		}
		var b strings.Builder
		for _, p := range parts {
			if !p.isVar {
				b.WriteString(p.text)
				continue
			}
			var s string
			if local, ok := v.SubVars[p.text]; ok {
				s, err = Resolve(local, r)
			} else if name, attr := splitSubVar(p.text); attr != "" {
				s, err = Resolve(Value{Kind: KindGetAtt, GetAtt: [2]string{name, attr}}, r)
			} else {
				s, err = Resolve(Value{Kind: KindRef, Ref: name}, r)
			}
			if err != nil {
				return "", fmt.Errorf("resolve ${%s} in !Sub %q: %w", p.text, v.Sub, err)
			}
			b.WriteString(s)
		}
		return b.String(), nil
	default:
		return "", fmt.Errorf("resolve: unknown value kind %d", v.Kind)
	}
}

type subPart struct {
	text  string
	isVar bool
}

// parseSub splits a Fn::Sub format string into text and ${name} variables; ${!x} is the
// literal text ${x}.
func parseSub(s string) ([]subPart, error) {
	var parts []subPart
	var text strings.Builder
	for i := 0; i < len(s); {
		if s[i] != '$' || i+1 >= len(s) || s[i+1] != '{' {
			text.WriteByte(s[i])
			i++
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			return nil, fmt.Errorf("!Sub %q: unterminated ${ at offset %d", s, i)
		}
		name := s[i+2 : i+2+end]
		i += 2 + end + 1
		if strings.HasPrefix(name, "!") {
			text.WriteString("${" + name[1:] + "}")
			continue
		}
		if name == "" || strings.TrimSpace(name) != name {
			return nil, fmt.Errorf("!Sub %q: bad variable ${%s}", s, name)
		}
		if text.Len() > 0 {
			parts = append(parts, subPart{text: text.String()})
			text.Reset()
		}
		parts = append(parts, subPart{text: name, isVar: true})
	}
	if text.Len() > 0 {
		parts = append(parts, subPart{text: text.String()})
	}
	return parts, nil
}

// splitSubVar splits ${Name.Attr} into its GetAtt parts; attr is empty for ${Name}.
func splitSubVar(v string) (name, attr string) {
	name, attr, _ = strings.Cut(v, ".")
	return name, attr
}

// intrinsic returns the name of the intrinsic function a node is (Ref, Fn::GetAtt, ...) and the
// node holding its argument; name is empty for plain values.
func intrinsic(n *yaml.Node) (name string, arg *yaml.Node) {
	if t := n.Tag; strings.HasPrefix(t, "!") && !strings.HasPrefix(t, "!!") && t != "!" {
		tag := t[1:]
		if tag != "Ref" && tag != "Condition" {
			tag = "Fn::" + tag
		}
		return tag, n
	}
	if n.Kind == yaml.MappingNode && len(n.Content) == 2 {
		k := n.Content[0].Value
		if k == "Ref" || strings.HasPrefix(k, "Fn::") {
			return k, deref(n.Content[1])
		}
	}
	return "", nil
}

// parseValue reads a scalar property: a literal or a Ref/GetAtt/Sub intrinsic, short or long form.
func parseValue(n *yaml.Node, where string) (Value, error) {
	n = deref(n)
	name, arg := intrinsic(n)
	switch name {
	case "":
		switch n.Kind {
		case yaml.ScalarNode:
			if n.ShortTag() == "!!null" {
				return Lit(""), nil
			}
			return Lit(n.Value), nil
		case yaml.MappingNode:
			return Value{}, fmt.Errorf("%s: expected a scalar or an intrinsic function, got a mapping", where)
		default:
			return Value{}, fmt.Errorf("%s: expected a scalar or an intrinsic function, got a list", where)
		}
	case "Ref":
		if arg.Kind != yaml.ScalarNode || arg.Value == "" {
			return Value{}, fmt.Errorf("%s: !Ref needs a name", where)
		}
		return Value{Kind: KindRef, Ref: arg.Value}, nil
	case "Fn::GetAtt":
		return parseGetAtt(arg, where)
	case "Fn::Sub":
		return parseSubValue(arg, where)
	default:
		return Value{}, fmt.Errorf("%s: unsupported intrinsic function %s (supported: Ref, Fn::GetAtt, Fn::Sub)", where, name)
	}
}

func parseGetAtt(arg *yaml.Node, where string) (Value, error) {
	var res, attr string
	switch arg.Kind {
	case yaml.ScalarNode:
		res, attr, _ = strings.Cut(arg.Value, ".")
	case yaml.SequenceNode:
		if len(arg.Content) == 2 {
			a, b := deref(arg.Content[0]), deref(arg.Content[1])
			if a.Kind == yaml.ScalarNode && b.Kind == yaml.ScalarNode && a.Tag != "!Ref" && b.Tag != "!Ref" {
				res, attr = a.Value, b.Value
			}
		}
	}
	if res == "" || attr == "" {
		return Value{}, fmt.Errorf("%s: !GetAtt needs Resource.Attribute or [Resource, Attribute]", where)
	}
	return Value{Kind: KindGetAtt, GetAtt: [2]string{res, attr}}, nil
}

func parseSubValue(arg *yaml.Node, where string) (Value, error) {
	v := Value{Kind: KindSub}
	switch arg.Kind {
	case yaml.ScalarNode:
		v.Sub = arg.Value
	case yaml.SequenceNode:
		if len(arg.Content) != 2 {
			return Value{}, fmt.Errorf("%s: !Sub list form needs [format, {variables}]", where)
		}
		format, vars := deref(arg.Content[0]), deref(arg.Content[1])
		if format.Kind != yaml.ScalarNode || vars.Kind != yaml.MappingNode {
			return Value{}, fmt.Errorf("%s: !Sub list form needs [format, {variables}]", where)
		}
		v.Sub = format.Value
		v.SubVars = make(map[string]Value, len(vars.Content)/2)
		for i := 0; i+1 < len(vars.Content); i += 2 {
			k := vars.Content[i].Value
			val, err := parseValue(vars.Content[i+1], where+".!Sub."+k)
			if err != nil {
				return Value{}, err
			}
			v.SubVars[k] = val
		}
	default:
		return Value{}, fmt.Errorf("%s: !Sub needs a string or [format, {variables}]", where)
	}
	if _, err := parseSub(v.Sub); err != nil {
		return Value{}, fmt.Errorf("%s: %w", where, err)
	}
	return v, nil
}

// deref follows YAML aliases (*anchor) to the node they name.
func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}
