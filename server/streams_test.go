package server_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/client/clienttest"
	"github.com/sortie-cd/sortie/server"
)

// TestEventStreamsPerPrincipal: one viewer opens auth.DefaultMaxStreams
// event streams, half through the API and half through the console; the
// next one, on either, is refused with 429, while another principal still
// opens one. Before, one viewer could open hundreds.
func TestEventStreamsPerPrincipal(t *testing.T) {
	srv := clienttest.Start(t, server.Config{})
	s := &liveServer{t: t, url: srv.URL}
	root := s.token(srv.Credentials.ClientID, srv.Credentials.ClientSecret, "")
	nc := s.credential(root, "watcher", "viewer")
	viewer := s.token(nc.ClientID, nc.ClientSecret, "")

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	open := func(path, token string) *http.Response {
		t.Helper()
		return s.openEvents(ctx, path, token)
	}
	paths := []string{api.Prefix + "/events", "/console/events"}
	for i := range auth.DefaultMaxStreams {
		p := paths[i%2]
		if resp := open(p, viewer); resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("stream %d (%s): %d %v", i+1, p, resp.StatusCode, resp.Header)
		}
	}
	for _, p := range paths {
		resp := open(p, viewer)
		if resp.StatusCode != http.StatusTooManyRequests {
			t.Errorf("stream %d of one principal (%s): %d, want 429", auth.DefaultMaxStreams+1, p, resp.StatusCode)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(b), "close one") {
			t.Errorf("the refusal of stream %d (%s) does not say why: %s", auth.DefaultMaxStreams+1, p, b)
		}
	}
	if resp := open(paths[0], root); resp.StatusCode != 200 {
		t.Errorf("another principal's stream: %d, want 200", resp.StatusCode)
	}
}
