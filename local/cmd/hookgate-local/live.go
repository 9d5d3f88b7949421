package main

import (
	"fmt"
	"io"

	"github.com/hookgate/hookgate/local/stack"
)

// liveBanner tells how to follow the event stream and where the widget's demo page is.
func liveBanner(w io.Writer, s *stack.Stack) {
	fmt.Fprintf(w, `Follow the event log as Server-Sent Events (Ctrl-C to stop; since=now, types=run.* work too):
  curl -N -H 'X-API-Key: %[2]s' %[1]s/v1/events/stream

The web chat widget: open %[1]s/widget/demo (allowed origins: %[3]s)
`, s.URL, s.Params["AdminApiKey"], s.Params["WidgetAllowedOrigins"])
}
