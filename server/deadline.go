package server

import (
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/sortie-cd/sortie/agent"
)

// Bounds on slow clients. There is deliberately no server-wide ReadTimeout:
// on HTTP/2 it would cut the agents' gRPC streams, and it would bound the
// event streams' lifetime.
const (
	// DefaultBodyReadTimeout is how long a request may take to send its
	// body.
	DefaultBodyReadTimeout = 30 * time.Second
	// DefaultIdleTimeout is how long a keep-alive connection with no
	// request in flight stays open.
	DefaultIdleTimeout = 2 * time.Minute
)

// withBodyDeadline gives every request that carries a body, but the
// agents' gRPC streams, d to send all of it: a client trickling a body is
// cut off. The deadline is cleared once the body has been read to its end,
// so a handler that answers slowly, or streams, is not cut.
func withBodyDeadline(next http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody && !agent.IsGRPC(r) {
			rc := http.NewResponseController(w)
			if rc.SetReadDeadline(time.Now().Add(d)) == nil {
				r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// deadlineBody clears the read deadline at the body's end.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	once sync.Once
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.once.Do(func() { _ = b.rc.SetReadDeadline(time.Time{}) })
	}
	return n, err
}
