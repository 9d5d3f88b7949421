// Command integrations-trigger is the Lambda behind POST /v1/integrations/trigger: Zapier and
// Make post a message, signed (X-Hookgate-Signature) or with a Bearer token, and it is queued.
package main

import (
	"github.com/hookgate/hookgate/shared/doors"
	"github.com/hookgate/hookgate/shared/doors/doorsenv"
	"github.com/hookgate/hookgate/shared/fnmain"
)

func main() {
	fnmain.Start(doorsenv.Function(func(d *doors.Doors) doors.HandlerFunc { return d.Trigger }))
}
