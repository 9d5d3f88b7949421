package provision

import (
	"time"

	"github.com/hookgate/hookgate/local/template"
)

// Specs maps the template's tables and queues to what provision creates: every name gets prefix
// before the logical id (QueueName for queues). A visibility above zero replaces every queue's
// visibility timeout (rounded down to whole seconds, at least one).
func Specs(tpl *template.Template, prefix string, visibility time.Duration) ([]Table, []Queue) {
	var tables []Table
	for _, t := range tpl.Tables() {
		spec := Table{
			Name: prefix + t.LogicalID, Attributes: map[string]string{}, HashKey: t.Key.Hash, RangeKey: t.Key.Range,
			TTLAttribute: t.TTLAttribute, StreamViewType: t.StreamViewType,
		}
		for _, a := range t.AttributeDefinitions {
			spec.Attributes[a.Name] = a.Type
		}
		for _, g := range t.GSIs {
			spec.GSIs = append(spec.GSIs, GSI{Name: g.Name, HashKey: g.Key.Hash, RangeKey: g.Key.Range, Projection: g.ProjectionType, NonKeyAttributes: g.NonKeyAttributes})
		}
		tables = append(tables, spec)
	}
	byID := map[string]template.Queue{}
	for _, q := range tpl.Queues() {
		byID[q.LogicalID] = q
	}
	var queues []Queue
	for _, q := range tpl.Queues() {
		spec := Queue{
			Name: QueueName(prefix, q), Fifo: q.Fifo, ContentBasedDedup: q.ContentBasedDeduplication,
			VisibilityTimeout: q.VisibilityTimeout, RetentionPeriod: q.MessageRetentionPeriod, DelaySeconds: q.DelaySeconds,
		}
		if visibility > 0 {
			spec.VisibilityTimeout = max(1, int(visibility/time.Second))
		}
		if q.Redrive != nil {
			spec.DLQ, spec.MaxReceiveCount = QueueName(prefix, byID[q.Redrive.Target]), q.Redrive.MaxReceiveCount
		}
		queues = append(queues, spec)
	}
	return tables, queues
}

// QueueName is the name Specs gives a declared queue: prefix, logical id, and .fifo for a FIFO queue.
func QueueName(prefix string, q template.Queue) string {
	if q.Fifo {
		return prefix + q.LogicalID + ".fifo"
	}
	return prefix + q.LogicalID
}
