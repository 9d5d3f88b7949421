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
// it takes the io.EOF for a write error and closes the connection under the answer being read
// ("use of closed network connection"). An answer comes back that fast on loopback (local mode):
// 1 or 2 answers in 192,000 were cut in a bare net/http reproduction, none with the copy. The SDK
// then sends the call again: a cut ReceiveMessage lost its batch for the queue's visibility
// timeout (issue 17's stall), and a conditional write applied by a cut attempt reads as a
// conflict on its retry. Bodies are small (SQS at most 1 MiB, DynamoDB items 400 KB).
func OwnBodies(next aws.HTTPClient) aws.HTTPClient { return ownBodies{next} }

type ownBodies struct{ next aws.HTTPClient }

func (c ownBodies) Do(r *http.Request) (*http.Response, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return c.next.Do(r)
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	r.ContentLength = int64(len(b))
	return c.next.Do(r)
}
