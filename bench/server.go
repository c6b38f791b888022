package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/client"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
)

var (
	listening = regexp.MustCompile(`msg="sortie server listening" addr=(\S+)`)
	connected = regexp.MustCompile(`msg="connected to the server"`)
)

// server is a `sortie server` process, and the API client of its
// bootstrap admin (package client, as the CLI uses it).
type server struct {
	bin    string
	proc   *proc
	api    *client.Client
	admin  auth.CredentialsFile
	agents []*proc
}

func startServer(ctx context.Context, bin, dir string) (*server, error) {
	return startServerArgs(ctx, bin, "sortie server", nil, filepath.Join(dir, "server"))
}

// startServerArgs starts `sortie server` named name with env added and its
// data in data, and logs in as its bootstrap admin.
func startServerArgs(ctx context.Context, bin, name string, env []string, data string) (*server, error) {
	p, err := startProc(name, bin, env, "server", "--addr", "127.0.0.1:0", "--data-dir", data)
	if err != nil {
		return nil, err
	}
	s := &server{bin: bin, proc: p}
	if err := s.login(ctx, data); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// login waits until the server listens and makes the client of the admin
// credential it wrote.
func (s *server) login(ctx context.Context, data string) error {
	m, err := s.proc.waitLine(ctx, listening)
	if err != nil {
		return err
	}
	var cf auth.CredentialsFile
	b, err := os.ReadFile(filepath.Join(data, auth.AdminCredentialsFile))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &cf); err != nil {
		return fmt.Errorf("%s: %w", auth.AdminCredentialsFile, err)
	}
	s.admin = cf
	s.api, err = s.clientOf(m[1])
	return err
}

// clientOf is a client of the bootstrap admin to the server at addr: this
// one, or a replica sharing its database.
func (s *server) clientOf(addr string) (*client.Client, error) {
	return client.New(client.Options{Server: "http://" + addr, ClientID: s.admin.ClientID, ClientSecret: s.admin.ClientSecret, UserAgent: "sortie-bench"})
}

func (s *server) close() {
	for _, a := range s.agents {
		a.stop()
	}
	s.proc.stop()
}

// startAgent runs `sortie agent` for account id against the cluster of
// kubeconfig, with a credential of its own, and waits until the server
// accepted it.
func (s *server) startAgent(ctx context.Context, id, kubeconfig string) (*proc, error) {
	nc, err := s.api.CreateCredential(ctx, api.CreateCredentialRequest{Name: "agent " + id, Roles: []string{pipeline.RoleAgent}})
	if err != nil {
		return nil, err
	}
	p, err := startProc("sortie agent "+id, s.bin, []string{"SORTIE_CLIENT_ID=" + nc.ClientID, "SORTIE_CLIENT_SECRET=" + nc.ClientSecret},
		"agent", "--server", s.api.Server(), "--agent-id", id, "--kubeconfig", kubeconfig)
	if err != nil {
		return nil, err
	}
	s.agents = append(s.agents, p)
	if _, err := p.waitLine(ctx, connected); err != nil {
		return nil, err
	}
	return p, nil
}

// start starts a pipeline and returns its id.
func (s *server) start(ctx context.Context, req api.StartRequest) (string, error) {
	res, err := s.api.StartPipeline(ctx, req)
	return res.PipelineID, err
}

// follow looks at the pipeline, then again at each of its events with a
// seq above after (its event stream, Server-Sent Events), until cond
// holds. It returns the pipeline and the seq of the last event it saw. A
// pipeline that ends without cond holding is an error.
func (s *server) follow(ctx context.Context, id string, after int64, cond func(*api.PipelineView) bool) (*api.PipelineView, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, rolloutLimit)
	defer cancel()
	var p *api.PipelineView
	check := func() (bool, error) {
		var err error
		if p, err = s.api.GetPipeline(ctx, id); err != nil {
			return false, err
		}
		if cond(p) {
			return true, nil
		}
		if p.Status.Terminal() {
			return false, fmt.Errorf("pipeline %s ended %s: %s", id, p.Status, describe(p))
		}
		return false, nil
	}
	if ok, err := check(); ok || err != nil {
		return p, after, err
	}
	err := s.api.FollowPipeline(ctx, id, after, client.FollowOptions{}, func(ev store.Event) error {
		after = ev.Seq
		ok, err := check()
		if ok {
			return client.ErrStop
		}
		return err
	})
	if err == nil && !cond(p) {
		err = errors.New("the event stream ended")
	}
	return p, after, err
}

func describe(p *api.PipelineView) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", p.Status, p.Message)
	for _, t := range p.Targets {
		fmt.Fprintf(&b, "; %s %s %s", t.Name, t.Status, t.Message)
		for _, st := range t.Steps {
			if st.Message != "" {
				fmt.Fprintf(&b, "; %s %s: %s", st.ID, st.Status, st.Message)
			}
		}
	}
	return b.String()
}

func ended(p *api.PipelineView) bool { return p.Status.Terminal() }

// awaiting holds while the pipeline waits for an approval with weight
// achieved.
func awaiting(weight int) func(*api.PipelineView) bool {
	return func(p *api.PipelineView) bool {
		return p.Status == pipeline.StatusAwaitingApproval && len(p.Targets) == 1 && p.Targets[0].AchievedWeight == weight
	}
}
