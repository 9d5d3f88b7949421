// Command inbound-binding is the Lambda behind POST /v1/inbound/binding/status: connectors
// report the status of a channel binding; verified and queued.
package main

import (
	"github.com/hookgate/hookgate/shared/doors"
	"github.com/hookgate/hookgate/shared/doors/doorsenv"
	"github.com/hookgate/hookgate/shared/fnmain"
)

func main() {
	fnmain.Start(doorsenv.Function(func(d *doors.Doors) doors.HandlerFunc { return d.Binding }))
}
