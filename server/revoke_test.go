package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/sortie-cd/sortie/agent"
	"github.com/sortie-cd/sortie/agent/agentpb"
	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/client/clienttest"
	"github.com/sortie-cd/sortie/runner"
	"github.com/sortie-cd/sortie/server"
)

// openEvents opens an event stream of the API or (path /console/events)
// of the console with token; the response's body ends with the stream.
func (s *liveServer) openEvents(ctx context.Context, path, token string) *http.Response {
	s.t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.url+path, nil)
	req.Header.Set("Accept", "text/event-stream")
	if path == "/console/events" {
		req.AddCookie(&http.Cookie{Name: "sortie_session", Value: token})
	} else {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("GET %s: %v", path, err)
	}
	s.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// TestEventStreamsEndWhenTheirCredentialIsDeleted reproduces issue 16
// item 5 on a real server: a viewer's API and console event streams were
// checked once, and outlived the deletion of its credential. Now both end
// when it is deleted (the console's saying so, so that the page asks to
// log in), and the token they were opened with is refused.
func TestEventStreamsEndWhenTheirCredentialIsDeleted(t *testing.T) {
	srv := clienttest.Start(t, server.Config{})
	s := &liveServer{t: t, url: srv.URL}
	root := s.token(srv.Credentials.ClientID, srv.Credentials.ClientSecret, "")
	nc := s.credential(root, "watcher", "viewer")
	viewer := s.token(nc.ClientID, nc.ClientSecret, "")

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	paths := []string{api.Prefix + "/events", "/console/events"}
	var streams []*http.Response
	for _, p := range paths {
		resp := s.openEvents(ctx, p, viewer)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", p, resp.StatusCode)
		}
		streams = append(streams, resp)
	}
	s.must(204, "DELETE", api.Prefix+"/credentials/"+nc.ClientID, root, nil, nil)
	for i, resp := range streams {
		b, err := io.ReadAll(resp.Body) // until the server ends the stream
		if err != nil {
			t.Fatalf("%s did not end when its credential was deleted: %v", paths[i], err)
		}
		if paths[i] == "/console/events" && !strings.Contains(string(b), "event: expired") {
			t.Errorf("the console's stream ended without saying the session did: %q", b)
		}
	}
	for _, p := range paths {
		if resp := s.openEvents(ctx, p, viewer); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s again with the deleted credential's token: %d, want 401", p, resp.StatusCode)
		}
	}
}

// TestAgentOfARevokedCredentialIsCut reproduces issue 16 item 5 for the
// agents on a real server with real agents: an agent's stream was checked
// once, so deleting its credential or taking its agent role away left it
// receiving commands and relayed secrets. Now the server cuts the stream
// at once; the agent cannot come back (no token, or one without the
// role), nor can the token it held, and a deleted credential's identifier
// is free for another credential at once.
func TestAgentOfARevokedCredentialIsCut(t *testing.T) {
	for name, tc := range map[string]struct {
		change  func(s *liveServer, root, id string)
		refusal string // why the agent cannot come back
	}{
		"deleted": {
			change: func(s *liveServer, root, id string) {
				s.must(204, "DELETE", api.Prefix+"/credentials/"+id, root, nil, nil)
			},
			refusal: "get a token",
		},
		"agent role taken away": {
			change: func(s *liveServer, root, id string) {
				s.must(200, "PUT", api.Prefix+"/credentials/"+id+"/roles", root, api.SetRolesRequest{Roles: []string{"viewer"}}, nil)
			},
			refusal: "may not connect an agent",
		},
	} {
		t.Run(name, func(t *testing.T) {
			srv := clienttest.Start(t, server.Config{})
			s := &liveServer{t: t, url: srv.URL}
			root := s.token(srv.Credentials.ClientID, srv.Credentials.ClientSecret, "")
			a := s.credential(root, "edge-a", "agent")
			held := s.token(a.ClientID, a.ClientSecret, "")
			connected, retrying := s.runAgent("edge", a)
			wait(t, connected, "edge connects")
			var list api.AgentList
			s.must(200, "GET", api.Prefix+"/agents", root, nil, &list)
			if len(list.Agents) != 1 {
				t.Fatalf("agents: %+v, want edge", list.Agents)
			}

			tc.change(s, root, a.ClientID)
			if why := wait(t, retrying, "the stream is cut"); !strings.Contains(why, auth.ErrTokenRevoked.Error()) {
				t.Errorf("the stream ended with %q, want %q", why, auth.ErrTokenRevoked)
			}
			if why := wait(t, retrying, "a reconnect is refused"); !strings.Contains(why, tc.refusal) {
				t.Errorf("the reconnect: %q, want a refusal saying %q", why, tc.refusal)
			}
			s.must(200, "GET", api.Prefix+"/agents", root, nil, &list)
			if len(list.Agents) != 0 {
				t.Errorf("agents: %+v, want none", list.Agents)
			}
			if err := s.connectWith(held, "edge"); status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), auth.ErrTokenRevoked.Error()) {
				t.Errorf("a stream with the token the agent held: %v, want Unauthenticated: %s", err, auth.ErrTokenRevoked)
			}
			if name == "deleted" {
				b := s.credential(root, "edge-b", "agent")
				connected, _ := s.runAgent("edge", b)
				wait(t, connected, "edge connects with another credential")
			}
		})
	}
}

// runAgent runs a real agent until the test ends; each connection and
// each retry (with its reason) arrives on the channels.
func (s *liveServer) runAgent(id string, c api.NewCredential) (connected, retrying chan string) {
	s.t.Helper()
	return s.runAgentWith(id, c, nil)
}

// runAgentWith is runAgent with ex running the agent's commands.
func (s *liveServer) runAgentWith(id string, c api.NewCredential, ex runner.Executor) (connected, retrying chan string) {
	s.t.Helper()
	connected, retrying = make(chan string, 1000), make(chan string, 1000)
	h := &multiHandler{[]*onMessage{{msg: "connected to the server", c: connected}, {msg: "not connected to the server; retrying", c: retrying}}}
	ag, err := agent.New(agent.Options{
		ServerURL: s.url, AgentID: id, ClientID: c.ClientID, ClientSecret: c.ClientSecret,
		Executor: func(string) runner.Executor { return ex }, Log: slog.New(h),
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
	})
	if err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ag.Run(ctx) }()
	s.t.Cleanup(func() { cancel(); <-done })
	return connected, retrying
}

// connectWith opens an agent stream with token by hand, says Hello and
// returns the status it ends with (nil if the server welcomed it).
func (s *liveServer) connectWith(token, id string) error {
	s.t.Helper()
	u, _ := url.Parse(s.url)
	cc, err := grpc.NewClient(u.Host, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		s.t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	stream, err := agentpb.NewAgentClient(cc).Connect(ctx)
	if err != nil {
		return err
	}
	if err := stream.Send(&agentpb.AgentMessage{Msg: &agentpb.AgentMessage_Hello{Hello: &agentpb.Hello{AgentId: id, Instance: "by-hand"}}}); err != nil && err != io.EOF {
		return err
	}
	if _, err := stream.Recv(); err != nil {
		return err
	}
	return nil
}

// wait returns the next value of c, failing the test after a minute.
func wait(t *testing.T, c chan string, what string) string {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(time.Minute):
		t.Fatalf("timed out waiting until %s", what)
	}
	return ""
}
