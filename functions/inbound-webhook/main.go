// Command inbound-webhook is the Lambda behind POST /v1/webhooks/generic/{workspace_id}: any JSON
// object from any SaaS, verified with the workspace's source, normalized, deduplicated and queued.
package main

import (
	"github.com/hookgate/hookgate/shared/doors"
	"github.com/hookgate/hookgate/shared/doors/doorsenv"
	"github.com/hookgate/hookgate/shared/fnmain"
)

func main() {
	fnmain.Start(doorsenv.Function(func(d *doors.Doors) doors.HandlerFunc { return d.Webhook }))
}
