package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/client"
	"github.com/sortie-cd/sortie/client/clienttest"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/runner"
	"github.com/sortie-cd/sortie/server"
	"github.com/sortie-cd/sortie/store"
)

// stuckReader is an HTTP client whose connections take in almost nothing
// (a 4 KiB receive buffer) and whose responses are never read: a viewer
// that opens event streams and stops reading them.
func stuckReader() *http.Client {
	d := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		c.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return err
	}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

// noCluster is an executor for an agent with no cluster: every command
// fails at once, with a long message (large events fill a stream sooner).
var noClusterMessage = "no cluster here: " + strings.Repeat("this agent has no cluster behind it. ", 800)

type noCluster struct{}

func (noCluster) Execute(_ context.Context, job runner.Job) pipeline.CommandResult {
	return pipeline.CommandResult{CommandID: job.Command.ID, Message: noClusterMessage}
}

func (noCluster) HasAccount(string, string) bool { return true }

// TestStuckEventStreamsDoNotStallPipelines (issue 16 item 14): two
// viewers open event streams on a real server and never read them (4 KiB
// receive buffers), while an admin runs a burst of 100 pipelines whose
// events (about 17 MiB a stream) are far more than a stream's socket and
// subscription buffers hold. Every pipeline still runs to its end, an
// admin's stream that reads sees each one end, and each stuck stream was
// ended by the server (read afterwards, it ends; its client would
// reconnect and replay) rather than waited for. The runner's own test
// (runner: TestSlowFanOutDoesNotBlockOtherPipelines) shows that a slow
// delivery holds no lock another pipeline's transition needs.
func TestStuckEventStreamsDoNotStallPipelines(t *testing.T) {
	srv := clienttest.Start(t, server.Config{})
	s := &liveServer{t: t, url: srv.URL}
	root := s.token(srv.Credentials.ClientID, srv.Credentials.ClientSecret, "")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stuck := stuckReader()
	var held []*http.Response
	for v := range 2 {
		nc := s.credential(root, fmt.Sprintf("stuck-%d", v), pipeline.RoleViewer)
		tok := s.token(nc.ClientID, nc.ClientSecret, "")
		for range 2 {
			req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+api.Prefix+"/events", nil)
			req.Header.Set("Accept", "text/event-stream")
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := stuck.Do(req)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("a viewer's stream: %v %v", resp, err)
			}
			t.Cleanup(func() { resp.Body.Close() })
			held = append(held, resp)
		}
	}
	// A real agent serves account nowhere; its executor stands in for a
	// cluster (what is under test is the events' way to the streams): each
	// command fails, so each pipeline fails fast.
	connected, _ := s.runAgentWith("nowhere", s.credential(root, "nowhere", pipeline.RoleAgent), noCluster{})
	wait(t, connected, "the agent connects")
	live := s.openEvents(ctx, api.Prefix+"/events", root)
	ended := make(chan string, 1024)
	var liveBytes atomic.Int64
	go func() {
		sc := bufio.NewScanner(live.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			liveBytes.Add(int64(len(sc.Bytes())))
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			var ev store.Event
			var ch pipeline.Change
			if !ok || json.Unmarshal([]byte(data), &ev) != nil || ev.Type != "status" || json.Unmarshal(ev.Data, &ch) != nil {
				continue
			}
			if ch.Target == "" && ch.To.Terminal() {
				ended <- ev.Pipeline
			}
		}
	}()

	c, err := client.New(client.Options{Server: srv.URL, ClientID: srv.Credentials.ClientID, ClientSecret: srv.Credentials.ClientSecret})
	if err != nil {
		t.Fatal(err)
	}
	const n = 100
	ids := make([]string, n)
	for i := range n {
		file := fmt.Sprintf(`version: v1
kind: kubernetes
application: burst-%d
targets:
  prod: {account: nowhere, namespace: default, strategy: s1}
strategies:
  s1: {canary: {steps: [{setWeight: {weight: 100}}]}}
manifests:
  - inline: |
      {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "burst-%d"}}
`, i, i)
		res, err := c.StartPipeline(ctx, api.StartRequest{FileName: "deploy.yml", File: file})
		if err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
		ids[i] = res.PipelineID
	}
	for _, id := range ids {
		if p := clienttest.WaitEnd(t, c, id); p.Status != pipeline.StatusFailed {
			t.Errorf("pipeline %s ended %s, want FAILED (no cluster)", id, p.Status)
		}
	}
	seen := map[string]bool{}
	timeout := time.After(clienttest.WaitLimit)
	for len(seen) < n {
		select {
		case id := <-ended:
			seen[id] = true
		case <-timeout:
			t.Fatalf("the reading stream saw %d of %d pipelines end", len(seen), n)
		}
	}
	t.Logf("the reading stream got %d KiB", liveBytes.Load()>>10)
	// The burst did fill the stuck streams: the server ended them (read
	// now, each ends) instead of holding their events.
	for i, resp := range held {
		ended := make(chan struct{})
		go func() { io.Copy(io.Discard, resp.Body); close(ended) }()
		select {
		case <-ended:
		case <-time.After(clienttest.WaitLimit):
			t.Fatalf("stuck stream %d was still open after the burst: it never fell behind, so the test proved nothing", i)
		}
	}
}
