package server_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/sortie-cd/sortie/client/clienttest"
	"github.com/sortie-cd/sortie/server"
)

// TestIdleAndHalfSentConnectionsAreClosed (issue 16 item 14): on a real
// server, a keep-alive connection left idle after its answer is closed by
// the server after Config.IdleTimeout, and a connection that sends half a
// request header and stops is closed after the header deadline (10 s),
// instead of each holding a connection for as long as its client likes.
// The client's read deadlines only bound a failing test: the idle one (8
// s) is shorter than the header deadline, which would otherwise close an
// idle connection too.
func TestIdleAndHalfSentConnectionsAreClosed(t *testing.T) {
	srv := clienttest.Start(t, server.Config{IdleTimeout: time.Second})
	u, _ := url.Parse(srv.URL)
	closedByServer := func(conn net.Conn, r *bufio.Reader, what string, within time.Duration) {
		t.Helper()
		conn.SetReadDeadline(time.Now().Add(within))
		_, err := r.ReadByte()
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			t.Errorf("%s: still open %v later", what, within)
		case err == nil:
			t.Errorf("%s: the server sent more", what)
		case !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed):
			t.Logf("%s: closed with %v", what, err)
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		half, err := net.Dial("tcp", u.Host)
		if err != nil {
			t.Error(err)
			return
		}
		defer half.Close()
		if _, err := io.WriteString(half, "GET /healthz HTTP/1.1\r\nHost: "+u.Host+"\r\nX-Slow: "); err != nil {
			t.Error(err)
			return
		}
		r := bufio.NewReader(half)
		closedByServer(half, r, "a connection that sent half a header", time.Minute)
	}()

	idle, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	if _, err := io.WriteString(idle, "GET /healthz HTTP/1.1\r\nHost: "+u.Host+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(idle)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Close {
		t.Fatalf("GET /healthz: %d, close %v; want 200 on a kept-alive connection", resp.StatusCode, resp.Close)
	}
	// Within 8 s: without the idle timeout of 1 s, the header deadline
	// (10 s) would close it.
	closedByServer(idle, r, "an idle keep-alive connection", 8*time.Second)
	<-done
}
