// Command inbound-telegram is the Lambda behind POST /v1/inbound/telegram: native Telegram
// updates, proven by the secret token, deduplicated by update_id and queued.
package main

import (
	"github.com/hookgate/hookgate/shared/doors"
	"github.com/hookgate/hookgate/shared/doors/doorsenv"
	"github.com/hookgate/hookgate/shared/fnmain"
)

func main() {
	fnmain.Start(doorsenv.Function(func(d *doors.Doors) doors.HandlerFunc { return d.Telegram }))
}
