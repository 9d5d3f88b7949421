package template

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// Resource types of the operator's view.
const (
	TypeAlarm = "AWS::CloudWatch::Alarm"
	TypeTopic = "AWS::SNS::Topic"
)

// Alarm is an AWS::CloudWatch::Alarm: one metric (Namespace, MetricName, Dimensions) or metric
// math over several (Metrics), and where it notifies.
type Alarm struct {
	LogicalID  string
	Metrics    []AlarmMetric // the single metric, or every MetricStat of the metric math
	Expression string        // the metric math expression that returns data; "" for a single metric
	Comparison string        // ComparisonOperator
	Threshold  string        // as written
	Actions    []Value       // AlarmActions
}

// AlarmMetric is one metric an alarm reads.
type AlarmMetric struct {
	Namespace  Value
	MetricName string
	Dimensions map[string]Value
}

func parseAlarm(id string, res obj) (Alarm, error) {
	a := Alarm{LogicalID: id}
	p, err := res.child("Properties")
	if err != nil {
		return a, err
	}
	if a.Comparison, err = p.str("ComparisonOperator"); err != nil {
		return a, err
	}
	if t := p.get("Threshold"); t != nil {
		a.Threshold = t.Value
	}
	if n := p.get("AlarmActions"); n != nil {
		if n.Kind != yaml.SequenceNode {
			return a, fmt.Errorf("%s: AlarmActions: expected a list", p.where)
		}
		for i, c := range n.Content {
			v, err := parseValue(c, fmt.Sprintf("%s.AlarmActions[%d]", p.where, i))
			if err != nil {
				return a, err
			}
			a.Actions = append(a.Actions, v)
		}
	}
	if p.get("MetricName") != nil {
		m, err := parseAlarmMetric(p)
		if err != nil {
			return a, err
		}
		a.Metrics = append(a.Metrics, m)
		return a, nil
	}
	queries, err := p.list("Metrics")
	if err != nil {
		return a, err
	}
	if len(queries) == 0 {
		return a, fmt.Errorf("%s: an alarm needs MetricName or Metrics", p.where)
	}
	for _, q := range queries {
		if expr, err := q.str("Expression"); err != nil {
			return a, err
		} else if expr != "" {
			if ret, err := q.boolean("ReturnData", true); err != nil {
				return a, err
			} else if ret {
				a.Expression = expr
			}
			continue
		}
		stat, err := q.child("MetricStat")
		if err != nil {
			return a, err
		}
		metric, err := stat.child("Metric")
		if err != nil {
			return a, err
		}
		if metric.n == nil {
			return a, fmt.Errorf("%s: a query needs Expression or MetricStat.Metric", q.where)
		}
		m, err := parseAlarmMetric(metric)
		if err != nil {
			return a, err
		}
		a.Metrics = append(a.Metrics, m)
	}
	return a, nil
}

func parseAlarmMetric(p obj) (AlarmMetric, error) {
	m := AlarmMetric{Dimensions: map[string]Value{}}
	var err error
	if m.Namespace, _, err = p.value("Namespace"); err != nil {
		return m, err
	}
	if m.MetricName, err = p.str("MetricName"); err != nil {
		return m, err
	}
	dims, err := p.list("Dimensions")
	if err != nil {
		return m, err
	}
	for _, d := range dims {
		name, err := d.str("Name")
		if err != nil {
			return m, err
		}
		v, ok, err := d.value("Value")
		if err != nil {
			return m, err
		} else if !ok || name == "" {
			return m, fmt.Errorf("%s: a dimension needs Name and Value", d.where)
		}
		m.Dimensions[name] = v
	}
	return m, nil
}
