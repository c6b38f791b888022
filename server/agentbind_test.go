package server_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sortie-cd/sortie/agent"
	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/client/clienttest"
	"github.com/sortie-cd/sortie/runner"
	"github.com/sortie-cd/sortie/server"
)

// TestAgentIdentifierBoundToCredential: a real server and real agents
// with two agent credentials of one tenant. The first to register "edge"
// owns it; while it is down, the other credential registering "edge" is
// refused (PermissionDenied, naming why and no secret), and the list shows
// the owner. Deleting the owner's credential releases the identifier.
// Before, any agent credential of the tenant took "edge" over, and with it
// that cluster's commands and relayed secrets.
func TestAgentIdentifierBoundToCredential(t *testing.T) {
	srv := clienttest.Start(t, server.Config{})
	s := &liveServer{t: t, url: srv.URL}
	root := s.token(srv.Credentials.ClientID, srv.Credentials.ClientSecret, "")
	a, b := s.credential(root, "edge-a", "agent"), s.credential(root, "edge-b", "agent")

	// run starts an agent and returns, on its first attempt, "" once it is
	// connected or the refusal; stop ends it.
	run := func(id string, c api.NewCredential) (result string, stop func()) {
		t.Helper()
		connected, refused := make(chan string, 10), make(chan string, 10)
		h := &multiHandler{[]*onMessage{{msg: "connected to the server", c: connected}, {msg: "not connected to the server; retrying", c: refused}}}
		ag, err := agent.New(agent.Options{
			ServerURL: s.url, AgentID: id, ClientID: c.ClientID, ClientSecret: c.ClientSecret,
			Executor: func(string) runner.Executor { return nil }, Log: slog.New(h),
			MinBackoff: time.Hour, MaxBackoff: time.Hour, // one attempt
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- ag.Run(ctx) }()
		stop = func() { cancel(); <-done }
		select {
		case <-connected:
		case result = <-refused:
		case <-time.After(time.Minute):
			stop()
			t.Fatalf("agent %s neither connected nor was refused", id)
		}
		return result, stop
	}

	res, stopA := run("edge", a)
	if res != "" {
		t.Fatalf("first registration of edge: %s", res)
	}
	var list api.AgentList
	s.must(200, "GET", api.Prefix+"/agents", root, nil, &list)
	if len(list.Agents) != 1 || list.Agents[0].ClientID != a.ClientID {
		t.Errorf("agents list: %+v, want edge bound to %s", list.Agents, a.ClientID)
	}
	stopA()

	res, stopB := run("edge", b)
	stopB()
	if !strings.Contains(res, "belongs to another credential") {
		t.Errorf("another credential registering edge: %q, want a refusal saying the identifier is another credential's", res)
	}
	if strings.Contains(res, a.ClientSecret) || strings.Contains(res, b.ClientSecret) {
		t.Errorf("the refusal holds a secret: %s", res)
	}
	// The other credential registers identifiers of its own.
	if res, stop := run("edge-2", b); res != "" {
		t.Errorf("credential b registering edge-2: %s", res)
	} else {
		stop()
	}
	// An admin deleting a's credential releases edge.
	s.must(204, "DELETE", api.Prefix+"/credentials/"+a.ClientID, root, nil, nil)
	res, stopB = run("edge", b)
	defer stopB()
	if res != "" {
		t.Fatalf("credential b registering edge after a's deletion: %s", res)
	}
}

// multiHandler hands each record to every handler.
type multiHandler struct{ hs []*onMessage }

func (m *multiHandler) Enabled(context.Context, slog.Level) bool { return true }
func (m *multiHandler) Handle(ctx context.Context, r slog.Record) error {
	for _, h := range m.hs {
		h.Handle(ctx, r)
	}
	return nil
}
func (m *multiHandler) WithAttrs([]slog.Attr) slog.Handler { return m }
func (m *multiHandler) WithGroup(string) slog.Handler      { return m }
