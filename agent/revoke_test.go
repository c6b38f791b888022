package agent

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sortie-cd/sortie/agent/agentpb"
	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
)

// logEvents is a log handler that hands the err attribute of each record
// with message msg to c: how these tests wait on what a side did.
type logEvents struct {
	msg string
	c   chan string
}

func newLogEvents(msg string) *logEvents { return &logEvents{msg: msg, c: make(chan string, 64)} }

func (h *logEvents) Enabled(context.Context, slog.Level) bool { return true }
func (h *logEvents) Handle(_ context.Context, r slog.Record) error {
	if r.Message != h.msg {
		return nil
	}
	var e string
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "err" {
			e = a.Value.String()
		}
		return true
	})
	select {
	case h.c <- e:
	default:
	}
	return nil
}
func (h *logEvents) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logEvents) WithGroup(string) slog.Handler      { return h }

// counter reads a counter's value.
func counter(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

// next waits for the next record.
func (h *logEvents) next(t *testing.T) string {
	t.Helper()
	select {
	case e := <-h.c:
		return e
	case <-time.After(30 * time.Second):
		t.Fatalf("no %q in 30 s", h.msg)
	}
	return ""
}

// TestAgentRenewsItsTokenInBand: tokens live 4 s here. A real agent keeps
// its one stream through several renewals (the hub asks, the agent sends
// a new token), and a command running across them finishes once, with no
// reconnect. Before, the stream lived by its first token forever.
func TestAgentRenewsItsTokenInBand(t *testing.T) {
	renewed := newLogEvents("agent token renewed")
	e := newEnvWith(t, envOptions{tokenTTL: 4 * time.Second, log: slog.New(renewed)})
	x := newFakeExec()
	a, _ := e.startAgent("prod", x)
	e.waitHub("prod connects", e.connected("prod"))
	first := e.hub.List(store.DefaultTenant)[0]

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	res := e.execute(ctx, job("prod", "c1"))
	waitStarted(t, x, "c1")
	const renewals = 2 // more than one token lifetime
	for range renewals {
		renewed.next(t)
	}
	x.gate("c1") <- pipeline.CommandResult{Success: true, Message: "done"}
	if r := waitResult(t, res); !r.Success || r.Message != "done" {
		t.Fatalf("result %+v", r)
	}
	if n := x.count("c1"); n != 1 {
		t.Errorf("c1 ran %d times, want once", n)
	}
	list := e.hub.List(store.DefaultTenant)
	if len(list) != 1 || !list[0].ConnectedAt.Equal(first.ConnectedAt) {
		t.Errorf("agents %+v, want the first stream (connected at %s) still", list, first.ConnectedAt)
	}
	if c, r := counter(a.m.connects), counter(a.m.reconnects); c != 1 || r != 0 {
		t.Errorf("the agent connected %v times and retried %v times, want once and never", c, r)
	}
	if n := counter(a.m.renewals); n < renewals {
		t.Errorf("the agent renewed %v times, want %d at least", n, renewals)
	}
}

// TestStreamEndsWhenItsTokenExpires: a stream whose agent does not answer
// RenewToken is ended by the hub when its token expires (tokens live 2 s;
// heartbeats are long, so silence cannot be why).
func TestStreamEndsWhenItsTokenExpires(t *testing.T) {
	e := newEnvWith(t, envOptions{heartbeat: time.Minute, tokenTTL: 2 * time.Second})
	err := e.rawStream(t, "prod", pipeline.RoleAgent, "i1", nil)
	if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), auth.ErrTokenExpired.Error()) {
		t.Fatalf("the stream ended with %v, want Unauthenticated: %s", err, auth.ErrTokenExpired)
	}
	e.waitHub("prod is gone", func() bool { return !e.hub.HasAccount(store.DefaultTenant, "prod") })
}

// TestDeletedCredentialCutsTheAgent: a real agent is connected when its
// credential is deleted. The hub ends its stream at once (Unauthenticated,
// revoked), and the agent cannot come back: it gets no token, and a token
// issued before the deletion is refused too. Before, the stream lived on
// until the server restarted.
func TestDeletedCredentialCutsTheAgent(t *testing.T) {
	e := newEnv(t)
	cid, secret := e.credential(pipeline.RoleAgent)
	old, err := e.auth.Issue(&store.Credential{Tenant: store.DefaultTenant, ClientID: cid, Roles: []string{pipeline.RoleAgent}})
	if err != nil {
		t.Fatal(err)
	}
	retrying := newLogEvents("not connected to the server; retrying")
	e.startAgentAs("prod", cid, secret, newFakeExec(), slog.New(retrying))
	e.waitHub("prod connects", e.connected("prod"))

	if err := e.auth.DeleteCredential(t.Context(), store.DefaultTenant, cid); err != nil {
		t.Fatal(err)
	}
	if why := retrying.next(t); !strings.Contains(why, auth.ErrTokenRevoked.Error()) {
		t.Errorf("the stream ended with %q, want %q", why, auth.ErrTokenRevoked)
	}
	e.waitHub("prod is gone", func() bool { return !e.hub.HasAccount(store.DefaultTenant, "prod") })
	for range 2 {
		if why := retrying.next(t); !strings.Contains(why, "get a token") {
			t.Errorf("a reconnect after the deletion: %q, want the token refused", why)
		}
	}
	if e.hub.HasAccount(store.DefaultTenant, "prod") {
		t.Error("the deleted credential's agent is connected again")
	}
	err = e.rawStreamWith(t, old.AccessToken, "prod", "i2")
	if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), auth.ErrTokenRevoked.Error()) {
		t.Errorf("a stream with a token issued before the deletion: %v, want Unauthenticated: %s", err, auth.ErrTokenRevoked)
	}
}

// TestRenewalOfAnotherCredentialEndsTheStream: the token a stream renews
// with must be of the credential that opened it.
func TestRenewalOfAnotherCredentialEndsTheStream(t *testing.T) {
	e := newEnv(t)
	a := e.handAgent(t, "prod")
	a.send(&agentpb.AgentMessage{Msg: &agentpb.AgentMessage_Token{Token: &agentpb.Token{AccessToken: e.token(t, pipeline.RoleAgent)}}})
	select {
	case err := <-a.ended:
		if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "not of") {
			t.Errorf("the stream ended with %v, want PermissionDenied naming the credentials", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stream goes on with another credential's token")
	}
}
