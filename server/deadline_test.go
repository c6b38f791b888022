package server_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sortie-cd/sortie/agent"
	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/client/clienttest"
	"github.com/sortie-cd/sortie/runner"
	"github.com/sortie-cd/sortie/server"
)

// TestTrickledBodyIsCutOff: a client sending the token endpoint's body one
// byte at a time, slower than the server's body deadline in total, is cut
// off; an event stream and an agent's gRPC stream opened before it stay
// open past that deadline (the event stream's heartbeat, 15 s after it
// opened, still arrives; the agent connected once). Before, the trickle
// went on for as long as the client liked.
func TestTrickledBodyIsCutOff(t *testing.T) {
	const deadline = time.Second
	srv := clienttest.Start(t, server.Config{BodyReadTimeout: deadline})
	s := &liveServer{t: t, url: srv.URL}
	root := s.token(srv.Credentials.ClientID, srv.Credentials.ClientSecret, "")

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.url+api.Prefix+"/events", nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+root)
	stream, err := http.DefaultClient.Do(req)
	if err != nil || stream.StatusCode != 200 {
		t.Fatalf("event stream: %v %v", stream, err)
	}
	defer stream.Body.Close()
	opened := time.Now()

	ac := s.credential(root, "edge", "agent")
	connects := make(chan string, 10)
	ag, err := agent.New(agent.Options{
		ServerURL: s.url, AgentID: "edge", ClientID: ac.ClientID, ClientSecret: ac.ClientSecret,
		Executor: func(string) runner.Executor { return nil },
		Log:      slog.New(&onMessage{msg: "connected to the server", c: connects}),
	})
	if err != nil {
		t.Fatal(err)
	}
	actx, acancel := context.WithCancel(ctx)
	adone := make(chan error, 1)
	go func() { adone <- ag.Run(actx) }()
	defer func() { acancel(); <-adone }()
	select {
	case <-connects:
	case <-ctx.Done():
		t.Fatal("the agent did not connect")
	}

	u, _ := url.Parse(s.url)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := "grant_type=client_credentials&client_id=x&client_secret=" + strings.Repeat("y", 200)
	if _, err := io.WriteString(conn, "POST "+auth.TokenPath+" HTTP/1.1\r\nHost: "+u.Host+
		"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// One byte every 100 ms: 200 bytes would take 20 s.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < len(body); i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if _, err := conn.Write([]byte{body[i]}); err != nil {
				return
			}
		}
	}()
	// The server answers or closes; the client's own limit only keeps a
	// failing test from hanging.
	conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	start := time.Now()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		t.Fatalf("a body trickled for %v was not cut off by the server", time.Since(start))
	case err == nil:
		resp.Body.Close()
		t.Logf("trickle answered %d after %v", resp.StatusCode, time.Since(start))
		if resp.StatusCode < 400 {
			t.Errorf("trickled request answered %d", resp.StatusCode)
		}
	default:
		t.Logf("trickle cut after %v: %v", time.Since(start), err)
	}

	// The stream opened before the trickle outlived the deadline: its
	// heartbeat comes after it.
	r := bufio.NewReader(stream.Body)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("the event stream ended %v after it opened: %v", time.Since(opened), err)
		}
		if strings.HasPrefix(line, ": heartbeat") {
			if since := time.Since(opened); since <= deadline {
				t.Fatalf("heartbeat after %v, not past the deadline", since)
			}
			break
		}
	}
	select {
	case <-connects:
		t.Error("the agent's stream was cut: it connected again")
	default:
	}
	if !ag.Connected() {
		t.Error("the agent is no longer connected")
	}
}

// onMessage is a log handler that sends on c, at each record whose
// message is msg, the record's err attribute.
type onMessage struct {
	msg string
	c   chan string
}

func (h *onMessage) Enabled(context.Context, slog.Level) bool { return true }
func (h *onMessage) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		var e string
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "err" {
				e = a.Value.String()
			}
			return true
		})
		h.c <- e
	}
	return nil
}
func (h *onMessage) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *onMessage) WithGroup(string) slog.Handler      { return h }
