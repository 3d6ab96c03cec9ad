package ec2

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
)

// BufferingClient is an HTTP client (the SDK's HTTPClient option) for AWS SDK clients
// pointed at the simulator. The SDK gives net/http a request body it cannot tell is in
// memory, so net/http sends the headers, then the body, then reads the body once more to
// check for extra bytes; on a link as fast as loopback the simulator's answer comes first,
// the SDK closes the body, that last read fails and net/http closes the connection under
// the answer ("use of closed network connection" while decoding, aws-sdk-go-v2 issue
// 2737; the SDK's default retryer retries it, which would add calls to every count a test
// asserts). With the body in memory net/http writes the request in one piece.
type BufferingClient struct {
	Client *http.Client // nil: http.DefaultClient
}

// Do sends req with its body read into memory first.
func (b BufferingClient) Do(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Body != http.NoBody {
		body, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("read request body: %w", err)
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	c := b.Client
	if c == nil {
		c = http.DefaultClient
	}
	return c.Do(req)
}
