package awscfg

import (
	"bytes"
	"fmt"
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// OwnBodies wraps next so that the transport gets a copy of each request body, one the SDK cannot
// close under it. smithy-go closes the body it hands net/http as soon as Do returns with the
// answer's headers, and that body's WriteTo then answers io.EOF. net/http's write loop may still be
// checking the body for bytes past its Content-Length (io.Copy to io.Discard, which uses WriteTo):
// it gets the io.EOF as an error and closes the connection under the answer being read ("use of
// closed network connection"). An answer comes back that fast on loopback (local mode): a bare
// net/http reproduction with such a body cut 1 or 2 answers in 192,000, none with a body whose
// WriteTo answers (0, nil) once closed. The SDK then sends the call again: a cut ReceiveMessage
// lost its batch for the queue's visibility timeout (issue 17's stall), and a conditional write
// applied by a cut attempt could read as a conflict on its retry. The copy costs one buffer of the
// body per attempt (SQS at most 1 MiB, a DynamoDB transaction a few MB).
//
// The copy has no GetBody, as the SDK's bodies have none: net/http follows a 307 or 308 only with a
// body it can send again, and the SDK's client allows those redirects.
func OwnBodies(next aws.HTTPClient) aws.HTTPClient { return ownBodies{next} }

type ownBodies struct{ next aws.HTTPClient }

func (c ownBodies) Do(r *http.Request) (*http.Response, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return c.next.Do(r)
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	if _, err := buf.ReadFrom(r.Body); err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	if r.ContentLength >= 0 && int64(buf.Len()) != r.ContentLength {
		return nil, fmt.Errorf("request body is %d bytes, its Content-Length %d", buf.Len(), r.ContentLength)
	}
	// A shallow copy: the SDK closes its own body once Do returns, and the transport holds ours.
	own := r.WithContext(r.Context())
	own.Body = io.NopCloser(bytes.NewReader(buf.Bytes()))
	own.ContentLength = int64(buf.Len())
	return c.next.Do(own)
}
