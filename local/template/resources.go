package template

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Function is an AWS::Serverless::Function with Globals.Function merged in (function values win,
// mappings such as Environment.Variables merge key by key) and Lambda's defaults applied.
type Function struct {
	LogicalID     string
	Description   string
	CodeURI       string   // CodeUri when it is a literal path, else ""
	Runtime       string   // "" when unset
	Architectures []string // default [x86_64]
	Handler       string
	Timeout       int    // seconds, default 3
	MemorySize    int    // MB, default 128
	BuildMethod   string // Metadata.BuildMethod, such as makefile
	Env           map[string]Value
	Policies      []Policy
	Routes        []Route        // HttpApi events, sorted by event name
	SQSSources    []SQSSource    // SQS events, sorted by event name
	StreamSources []StreamSource // DynamoDB events, sorted by event name
	Schedules     []Schedule     // Schedule and ScheduleV2 events, sorted by event name
	LogGroup      Value          // LoggingConfig.LogGroup as written; the zero Value when absent
	// RecursiveLoop is Lambda's recursive loop detection setting: Terminate (the default) or Allow.
	RecursiveLoop string
}

// Schedule is a Schedule (EventBridge rule) or ScheduleV2 (EventBridge Scheduler) event of a
// function: EventBridge invokes it on a rate(...) or cron(...) expression.
type Schedule struct {
	Event      string // event name
	Expression string // Schedule, or ScheduleV2's ScheduleExpression, as written
	Enabled    bool   // Enabled (default true), or ScheduleV2's State (default ENABLED)
}

// Policy is one entry of a function's Policies. Exactly one form is set: Document for an inline
// policy document, Template for a SAM policy template, else Managed.
type Policy struct {
	Managed    Value            // managed policy name or ARN
	Template   string           // SAM policy template name, such as DynamoDBCrudPolicy
	Args       map[string]Value // the policy template's parameters
	Document   bool             // an inline policy document (a mapping with Statement)
	Statements []Statement      // the document's statements
}

// Statement is one statement of an inline policy document.
type Statement struct {
	Effect    string
	Actions   []string                      // Action, one or a list
	Resources []Value                       // Resource, one or a list
	Condition map[string]map[string][]Value // operator → condition key → values
	Negated   bool                          // NotAction, NotResource or NotPrincipal: the checks refuse it
}

// Route is an HttpApi event of a function.
type Route struct {
	Event                string // event name
	API                  Value  // ApiId; the zero Value when absent (SAM's implicit API)
	Method               string // upper-cased; ANY for the $default route
	Path                 string // $default for the $default route
	Default              bool   // the $default route: the event has neither Path nor Method
	PayloadFormatVersion string // default 2.0
}

// SQSSource is an SQS event of a function.
type SQSSource struct {
	Event                          string // event name
	Queue                          string // queue logical id when Source is !GetAtt Queue.Arn, else ""
	Source                         Value  // the Queue property as written
	BatchSize                      int    // default 10
	MaximumBatchingWindowInSeconds int    // 0 when absent
	ReportBatchItemFailures        bool   // FunctionResponseTypes has ReportBatchItemFailures
	Enabled                        bool   // default true
	MaximumConcurrency             Value  // ScalingConfig.MaximumConcurrency as written; the zero Value when absent
}

// StreamSource is a DynamoDB event of a function: Lambda reads a table's stream for it.
type StreamSource struct {
	Event                          string   // event name
	Table                          string   // table logical id when Stream is !GetAtt Table.StreamArn, else ""
	Stream                         Value    // the Stream property as written
	StartingPosition               string   // TRIM_HORIZON or LATEST as written; "" when absent
	BatchSize                      int      // default 100
	MaximumBatchingWindowInSeconds int      // 0 when absent
	BisectBatchOnFunctionError     bool     // default false
	MaximumRetryAttempts           int      // default -1: retry until the record expires
	ReportBatchItemFailures        bool     // FunctionResponseTypes has ReportBatchItemFailures
	FilterPatterns                 []string // FilterCriteria.Filters[].Pattern: Lambda filter patterns, JSON as written
	OnFailure                      Value    // DestinationConfig.OnFailure.Destination; the zero Value when absent
	Enabled                        bool     // default true
}

// Table is an AWS::DynamoDB::Table.
type Table struct {
	LogicalID            string
	TableName            Value  // the zero Value when CloudFormation names the table
	BillingMode          string // default PROVISIONED
	AttributeDefinitions []AttributeDefinition
	Key                  KeySchema
	GSIs                 []Index
	LSIs                 []Index
	TTLAttribute         string // "" unless TimeToLiveSpecification is enabled
	StreamViewType       string // StreamSpecification.StreamViewType; "" when the table has no stream
}

// AttributeDefinition is a key attribute and its type (S, N or B).
type AttributeDefinition struct {
	Name string
	Type string
}

// KeySchema is a primary or index key; Range is "" for hash-only keys.
type KeySchema struct {
	Hash  string
	Range string
}

// Index is a global or local secondary index.
type Index struct {
	Name             string
	Key              KeySchema
	ProjectionType   string // ALL, KEYS_ONLY or INCLUDE
	NonKeyAttributes []string
}

// Queue is an AWS::SQS::Queue, with SQS's defaults applied.
type Queue struct {
	LogicalID                 string
	QueueName                 Value // the zero Value when CloudFormation names the queue
	Fifo                      bool
	ContentBasedDeduplication bool
	VisibilityTimeout         int // seconds, default 30
	MessageRetentionPeriod    int // seconds, default 345600 (4 days)
	DelaySeconds              int // default 0
	Redrive                   *Redrive
	Encrypted                 bool // SqsManagedSseEnabled is true, or KmsMasterKeyId is set
}

// LogGroup is an AWS::Logs::LogGroup.
type LogGroup struct {
	LogicalID       string
	RetentionInDays Value // as written; the zero Value when absent (kept forever)
}

func parseLogGroup(id string, res obj) (LogGroup, error) {
	lg := LogGroup{LogicalID: id}
	p, err := res.child("Properties")
	if err != nil {
		return lg, err
	}
	lg.RetentionInDays, _, err = p.value("RetentionInDays")
	return lg, err
}

// Redrive is a queue's RedrivePolicy.
type Redrive struct {
	Target          string // DLQ logical id when TargetARN is !GetAtt Queue.Arn, else ""
	TargetARN       Value  // deadLetterTargetArn as written
	MaxReceiveCount int
}

func parseFunction(id string, res obj, globals *yaml.Node) (Function, error) {
	fn := Function{LogicalID: id}
	own, err := res.child("Properties")
	if err != nil {
		return fn, err
	}
	p := obj{n: mergeGlobals(globals, own.n), where: own.where}
	meta, err := res.child("Metadata")
	if err != nil {
		return fn, err
	}
	if fn.BuildMethod, err = meta.str("BuildMethod"); err != nil {
		return fn, err
	}
	for _, f := range []struct {
		key string
		dst *string
	}{{"Description", &fn.Description}, {"Runtime", &fn.Runtime}, {"Handler", &fn.Handler}} {
		if *f.dst, err = p.str(f.key); err != nil {
			return fn, err
		}
	}
	if n := p.get("CodeUri"); n != nil && n.Kind == yaml.ScalarNode {
		if fn.CodeURI, err = p.str("CodeUri"); err != nil {
			return fn, err
		}
	}
	if fn.Architectures, err = p.strs("Architectures"); err != nil {
		return fn, err
	}
	if fn.Architectures == nil {
		fn.Architectures = []string{"x86_64"}
	}
	if fn.Timeout, err = p.integer("Timeout", 3); err != nil {
		return fn, err
	}
	if fn.MemorySize, err = p.integer("MemorySize", 128); err != nil {
		return fn, err
	}
	if fn.RecursiveLoop, err = p.str("RecursiveLoop"); err != nil {
		return fn, err
	}
	if fn.RecursiveLoop == "" {
		fn.RecursiveLoop = "Terminate"
	}
	env, err := p.child("Environment")
	if err != nil {
		return fn, err
	}
	vars, err := env.child("Variables")
	if err != nil {
		return fn, err
	}
	fn.Env = make(map[string]Value, len(vars.keys()))
	for _, k := range vars.keys() {
		if fn.Env[k], _, err = vars.value(k); err != nil {
			return fn, err
		}
	}
	if fn.Policies, err = parsePolicies(p); err != nil {
		return fn, err
	}
	logging, err := p.child("LoggingConfig")
	if err != nil {
		return fn, err
	}
	if fn.LogGroup, _, err = logging.value("LogGroup"); err != nil {
		return fn, err
	}
	events, err := p.child("Events")
	if err != nil {
		return fn, err
	}
	for _, name := range events.keys() {
		ev, err := events.child(name)
		if err != nil {
			return fn, err
		}
		typ, err := ev.str("Type")
		if err != nil {
			return fn, err
		}
		props, err := ev.child("Properties")
		if err != nil {
			return fn, err
		}
		switch typ {
		case "":
			return fn, fmt.Errorf("%s: Type is required", ev.where)
		case "HttpApi":
			r, err := parseRoute(name, props)
			if err != nil {
				return fn, err
			}
			fn.Routes = append(fn.Routes, r)
		case "SQS":
			s, err := parseSQSSource(name, props)
			if err != nil {
				return fn, err
			}
			fn.SQSSources = append(fn.SQSSources, s)
		case "DynamoDB":
			s, err := parseStreamSource(name, props)
			if err != nil {
				return fn, err
			}
			fn.StreamSources = append(fn.StreamSources, s)
		case "Schedule", "ScheduleV2":
			s, err := parseSchedule(name, typ, props)
			if err != nil {
				return fn, err
			}
			fn.Schedules = append(fn.Schedules, s)
		}
	}
	sort.Slice(fn.Routes, func(i, j int) bool { return fn.Routes[i].Event < fn.Routes[j].Event })
	sort.Slice(fn.SQSSources, func(i, j int) bool { return fn.SQSSources[i].Event < fn.SQSSources[j].Event })
	sort.Slice(fn.StreamSources, func(i, j int) bool { return fn.StreamSources[i].Event < fn.StreamSources[j].Event })
	sort.Slice(fn.Schedules, func(i, j int) bool { return fn.Schedules[i].Event < fn.Schedules[j].Event })
	return fn, nil
}

func parseSchedule(name, typ string, p obj) (Schedule, error) {
	s := Schedule{Event: name, Enabled: true}
	var err error
	if typ == "Schedule" {
		if s.Expression, err = p.str("Schedule"); err != nil {
			return s, err
		}
		s.Enabled, err = p.boolean("Enabled", true)
		return s, err
	}
	if s.Expression, err = p.str("ScheduleExpression"); err != nil {
		return s, err
	}
	state, err := p.str("State")
	s.Enabled = state != "DISABLED"
	return s, err
}

func parsePolicies(p obj) ([]Policy, error) {
	n := p.get("Policies")
	if n == nil {
		return nil, nil
	}
	where := join(p.where, "Policies")
	items, single := n.Content, false
	if n.Kind != yaml.SequenceNode || isIntrinsicNode(n) {
		items, single = []*yaml.Node{n}, true
	}
	var out []Policy
	for i, item := range items {
		item = deref(item)
		w := where
		if !single {
			w = fmt.Sprintf("%s[%d]", where, i)
		}
		switch {
		case item.Kind == yaml.ScalarNode || isIntrinsicNode(item):
			v, err := parseValue(item, w)
			if err != nil {
				return nil, err
			}
			out = append(out, Policy{Managed: v})
		case item.Kind == yaml.MappingNode && (single || obj{n: item}.get("Statement") != nil):
			sts, err := parseStatements(obj{n: item, where: w})
			if err != nil {
				return nil, err
			}
			out = append(out, Policy{Document: true, Statements: sts})
		case item.Kind == yaml.MappingNode && len(item.Content) == 2:
			name := deref(item.Content[0]).Value
			args, err := obj{n: item, where: w}.child(name)
			if err != nil {
				return nil, err
			}
			pol := Policy{Template: name, Args: map[string]Value{}}
			for _, k := range args.keys() {
				if pol.Args[k], _, err = args.value(k); err != nil {
					return nil, err
				}
			}
			out = append(out, pol)
		default:
			return nil, fmt.Errorf("%s: expected a policy name, a policy template or a policy document", w)
		}
	}
	return out, nil
}

// parseStatements reads the Statement of a policy document: one mapping or a list of them.
func parseStatements(doc obj) ([]Statement, error) {
	n := doc.get("Statement")
	var items []obj
	switch {
	case n == nil:
		return nil, nil
	case n.Kind == yaml.MappingNode && !isIntrinsicNode(n):
		items = []obj{{n: n, where: join(doc.where, "Statement")}}
	default:
		var err error
		if items, err = doc.list("Statement"); err != nil {
			return nil, err
		}
	}
	var out []Statement
	for _, it := range items {
		st := Statement{Negated: it.get("NotAction") != nil || it.get("NotResource") != nil || it.get("NotPrincipal") != nil}
		var err error
		if st.Effect, err = it.str("Effect"); err != nil {
			return nil, err
		}
		if st.Actions, err = it.strs("Action"); err != nil {
			return nil, err
		}
		if st.Resources, err = values(it, "Resource"); err != nil {
			return nil, err
		}
		cond, err := it.child("Condition")
		if err != nil {
			return nil, err
		}
		for _, op := range cond.keys() {
			keys, err := cond.child(op)
			if err != nil {
				return nil, err
			}
			if st.Condition == nil {
				st.Condition = map[string]map[string][]Value{}
			}
			st.Condition[op] = map[string][]Value{}
			for _, k := range keys.keys() {
				if st.Condition[op][k], err = values(keys, k); err != nil {
					return nil, err
				}
			}
		}
		out = append(out, st)
	}
	return out, nil
}

// values returns the Values under key: one, or a list of them.
func values(o obj, key string) ([]Value, error) {
	n := o.get(key)
	if n == nil {
		return nil, nil
	}
	where := join(o.where, key)
	if n.Kind != yaml.SequenceNode || isIntrinsicNode(n) {
		v, err := parseValue(n, where)
		return []Value{v}, err
	}
	out := make([]Value, 0, len(n.Content))
	for i, c := range n.Content {
		v, err := parseValue(c, fmt.Sprintf("%s[%d]", where, i))
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func isIntrinsicNode(n *yaml.Node) bool {
	name, _ := intrinsic(n)
	return name != ""
}

func parseRoute(name string, p obj) (Route, error) {
	r := Route{Event: name}
	var err error
	if r.API, _, err = p.value("ApiId"); err != nil {
		return r, err
	}
	if r.Path, err = p.str("Path"); err != nil {
		return r, err
	}
	if r.Method, err = p.str("Method"); err != nil {
		return r, err
	}
	r.Method = strings.ToUpper(r.Method)
	if r.PayloadFormatVersion, err = p.str("PayloadFormatVersion"); err != nil {
		return r, err
	}
	if r.PayloadFormatVersion == "" {
		r.PayloadFormatVersion = "2.0"
	}
	switch {
	case r.Path == "" && r.Method == "", r.Path == "$default" && (r.Method == "" || r.Method == "ANY"):
		r.Path, r.Method, r.Default = "$default", "ANY", true
	case r.Path == "":
		return r, fmt.Errorf("%s: Method without Path (omit both for the $default route)", p.where)
	case r.Method == "":
		return r, fmt.Errorf("%s: Path without Method (omit both for the $default route)", p.where)
	}
	return r, nil
}

func parseSQSSource(name string, p obj) (SQSSource, error) {
	s := SQSSource{Event: name}
	var ok bool
	var err error
	if s.Source, ok, err = p.value("Queue"); err != nil {
		return s, err
	} else if !ok {
		return s, fmt.Errorf("%s: Queue is required", p.where)
	}
	if s.Source.Kind == KindGetAtt && s.Source.GetAtt[1] == "Arn" {
		s.Queue = s.Source.GetAtt[0]
	}
	if s.BatchSize, err = p.integer("BatchSize", 10); err != nil {
		return s, err
	}
	if s.MaximumBatchingWindowInSeconds, err = p.integer("MaximumBatchingWindowInSeconds", 0); err != nil {
		return s, err
	}
	if s.Enabled, err = p.boolean("Enabled", true); err != nil {
		return s, err
	}
	scaling, err := p.child("ScalingConfig")
	if err != nil {
		return s, err
	}
	if s.MaximumConcurrency, _, err = scaling.value("MaximumConcurrency"); err != nil {
		return s, err
	}
	types, err := p.strs("FunctionResponseTypes")
	if err != nil {
		return s, err
	}
	s.ReportBatchItemFailures = slices.Contains(types, "ReportBatchItemFailures")
	return s, nil
}

func parseStreamSource(name string, p obj) (StreamSource, error) {
	s := StreamSource{Event: name}
	var ok bool
	var err error
	if s.Stream, ok, err = p.value("Stream"); err != nil {
		return s, err
	} else if !ok {
		return s, fmt.Errorf("%s: Stream is required", p.where)
	}
	if s.Stream.Kind == KindGetAtt && s.Stream.GetAtt[1] == "StreamArn" {
		s.Table = s.Stream.GetAtt[0]
	}
	if s.StartingPosition, err = p.str("StartingPosition"); err != nil {
		return s, err
	}
	for _, f := range []struct {
		key string
		def int
		dst *int
	}{
		{"BatchSize", 100, &s.BatchSize},
		{"MaximumBatchingWindowInSeconds", 0, &s.MaximumBatchingWindowInSeconds},
		{"MaximumRetryAttempts", -1, &s.MaximumRetryAttempts},
	} {
		if *f.dst, err = p.integer(f.key, f.def); err != nil {
			return s, err
		}
	}
	if s.BisectBatchOnFunctionError, err = p.boolean("BisectBatchOnFunctionError", false); err != nil {
		return s, err
	}
	if s.Enabled, err = p.boolean("Enabled", true); err != nil {
		return s, err
	}
	types, err := p.strs("FunctionResponseTypes")
	if err != nil {
		return s, err
	}
	s.ReportBatchItemFailures = slices.Contains(types, "ReportBatchItemFailures")
	criteria, err := p.child("FilterCriteria")
	if err != nil {
		return s, err
	}
	filters, err := criteria.list("Filters")
	if err != nil {
		return s, err
	}
	for _, f := range filters {
		pattern, err := f.str("Pattern")
		if err != nil {
			return s, err
		}
		if pattern == "" {
			return s, fmt.Errorf("%s: Pattern is required", f.where)
		}
		s.FilterPatterns = append(s.FilterPatterns, pattern)
	}
	dest, err := p.child("DestinationConfig")
	if err != nil {
		return s, err
	}
	onFailure, err := dest.child("OnFailure")
	if err != nil {
		return s, err
	}
	if s.OnFailure, _, err = onFailure.value("Destination"); err != nil {
		return s, err
	}
	return s, nil
}

func parseTable(id string, res obj) (Table, error) {
	t := Table{LogicalID: id}
	p, err := res.child("Properties")
	if err != nil {
		return t, err
	}
	if t.TableName, _, err = p.value("TableName"); err != nil {
		return t, err
	}
	if t.BillingMode, err = p.str("BillingMode"); err != nil {
		return t, err
	}
	if t.BillingMode == "" {
		t.BillingMode = "PROVISIONED"
	}
	defs, err := p.list("AttributeDefinitions")
	if err != nil {
		return t, err
	}
	for _, d := range defs {
		var a AttributeDefinition
		if a.Name, err = d.str("AttributeName"); err != nil {
			return t, err
		}
		if a.Type, err = d.str("AttributeType"); err != nil {
			return t, err
		}
		if a.Name == "" || (a.Type != "S" && a.Type != "N" && a.Type != "B") {
			return t, fmt.Errorf("%s: needs AttributeName and an AttributeType of S, N or B", d.where)
		}
		t.AttributeDefinitions = append(t.AttributeDefinitions, a)
	}
	if t.Key, err = parseKeySchema(p); err != nil {
		return t, err
	}
	if t.GSIs, err = parseIndexes(p, "GlobalSecondaryIndexes"); err != nil {
		return t, err
	}
	if t.LSIs, err = parseIndexes(p, "LocalSecondaryIndexes"); err != nil {
		return t, err
	}
	ttl, err := p.child("TimeToLiveSpecification")
	if err != nil {
		return t, err
	}
	enabled, err := ttl.boolean("Enabled", false)
	if err != nil {
		return t, err
	}
	if enabled {
		if t.TTLAttribute, err = ttl.str("AttributeName"); err != nil {
			return t, err
		}
		if t.TTLAttribute == "" {
			return t, fmt.Errorf("%s: AttributeName is required when Enabled", ttl.where)
		}
	}
	stream, err := p.child("StreamSpecification")
	if err != nil {
		return t, err
	}
	if stream.n != nil {
		if t.StreamViewType, err = stream.str("StreamViewType"); err != nil {
			return t, err
		}
		if views := []string{"NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES", "KEYS_ONLY"}; !slices.Contains(views, t.StreamViewType) {
			return t, fmt.Errorf("%s: StreamViewType is %q, want one of %v", stream.where, t.StreamViewType, views)
		}
	}
	return t, nil
}

func parseKeySchema(p obj) (KeySchema, error) {
	var k KeySchema
	keys, err := p.list("KeySchema")
	if err != nil {
		return k, err
	}
	where := join(p.where, "KeySchema")
	for _, e := range keys {
		name, err := e.str("AttributeName")
		if err != nil {
			return k, err
		}
		typ, err := e.str("KeyType")
		if err != nil {
			return k, err
		}
		switch {
		case name == "":
			return k, fmt.Errorf("%s: AttributeName is required", e.where)
		case typ == "HASH" && k.Hash == "":
			k.Hash = name
		case typ == "RANGE" && k.Range == "":
			k.Range = name
		default:
			return k, fmt.Errorf("%s: KeyType must be one HASH and at most one RANGE, got %q", e.where, typ)
		}
	}
	if k.Hash == "" {
		return k, fmt.Errorf("%s: no HASH key", where)
	}
	return k, nil
}

func parseIndexes(p obj, key string) ([]Index, error) {
	items, err := p.list(key)
	if err != nil {
		return nil, err
	}
	var out []Index
	for _, it := range items {
		var ix Index
		if ix.Name, err = it.str("IndexName"); err != nil {
			return nil, err
		}
		if ix.Name == "" {
			return nil, fmt.Errorf("%s: IndexName is required", it.where)
		}
		if ix.Key, err = parseKeySchema(it); err != nil {
			return nil, err
		}
		proj, err := it.child("Projection")
		if err != nil {
			return nil, err
		}
		if ix.ProjectionType, err = proj.str("ProjectionType"); err != nil {
			return nil, err
		}
		if ix.NonKeyAttributes, err = proj.strs("NonKeyAttributes"); err != nil {
			return nil, err
		}
		if ix.ProjectionType == "" {
			ix.ProjectionType = "KEYS_ONLY"
			if ix.NonKeyAttributes != nil {
				ix.ProjectionType = "INCLUDE"
			}
		}
		out = append(out, ix)
	}
	return out, nil
}

func parseQueue(id string, res obj) (Queue, error) {
	q := Queue{LogicalID: id}
	p, err := res.child("Properties")
	if err != nil {
		return q, err
	}
	if q.QueueName, _, err = p.value("QueueName"); err != nil {
		return q, err
	}
	if q.Fifo, err = p.boolean("FifoQueue", false); err != nil {
		return q, err
	}
	if q.ContentBasedDeduplication, err = p.boolean("ContentBasedDeduplication", false); err != nil {
		return q, err
	}
	if q.VisibilityTimeout, err = p.integer("VisibilityTimeout", 30); err != nil {
		return q, err
	}
	if q.MessageRetentionPeriod, err = p.integer("MessageRetentionPeriod", 345600); err != nil {
		return q, err
	}
	if q.DelaySeconds, err = p.integer("DelaySeconds", 0); err != nil {
		return q, err
	}
	if q.Encrypted, err = p.boolean("SqsManagedSseEnabled", false); err != nil {
		return q, err
	}
	if kms, ok, err := p.value("KmsMasterKeyId"); err != nil {
		return q, err
	} else if ok && (kms.Kind != KindLiteral || kms.Literal != "") {
		q.Encrypted = true
	}
	rp, err := p.child("RedrivePolicy")
	if err != nil {
		return q, err
	}
	if rp.n != nil {
		r := &Redrive{}
		var ok bool
		if r.TargetARN, ok, err = rp.value("deadLetterTargetArn"); err != nil {
			return q, err
		} else if !ok {
			return q, fmt.Errorf("%s: deadLetterTargetArn is required", rp.where)
		}
		if r.TargetARN.Kind == KindGetAtt && r.TargetARN.GetAtt[1] == "Arn" {
			r.Target = r.TargetARN.GetAtt[0]
		}
		if r.MaxReceiveCount, err = rp.integer("maxReceiveCount", 0); err != nil {
			return q, err
		}
		if r.MaxReceiveCount < 1 {
			return q, fmt.Errorf("%s: maxReceiveCount must be at least 1", rp.where)
		}
		q.Redrive = r
	}
	return q, nil
}
