package console

import (
	"bytes"
	"net/http"
)

// recorder is the answer of a handler the console calls in process (the
// REST API, the token endpoint): what a client would have read.
type recorder struct {
	Code   int
	header http.Header
	Body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.Code == 0 {
		r.Code = code
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.Body.Write(b)
}

// serveInProcess runs req through h and returns its answer.
func serveInProcess(h http.Handler, req *http.Request) *recorder {
	rec := &recorder{header: http.Header{}}
	h.ServeHTTP(rec, req)
	rec.WriteHeader(http.StatusOK)
	return rec
}
