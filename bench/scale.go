package main

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sortie-cd/sortie/agent"
	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/client"
	"github.com/sortie-cd/sortie/internal/pgserver"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/runner"
	"github.com/sortie-cd/sortie/secrets"
)

//go:embed testdata/scale.yml
var scaleFile string

// scaleOptions size the scale benchmark.
type scaleOptions struct {
	pipelines   int           // pipelines each side runs
	agents      int           // simulated agents, one account each
	concurrency int           // pipelines in flight at once
	replicas    int           // servers sharing the PostgreSQL database
	pause       time.Duration // the timed pause of the timer pipelines
}

// scaleSide is what one side of the scale benchmark measured.
type scaleSide struct {
	name              string
	approval, timer   []time.Duration // cause → command, one per pipeline
	took              time.Duration   // the timed phase, first start to last end
	servers           []serverUsage
	database          *serverUsage // PostgreSQL's processes, CPU only
	pipelines, agents int
}

// serverUsage is one process's peak memory and the CPU it used in the
// timed phase.
type serverUsage struct {
	name string
	hwm  int64 // bytes, VmHWM: the peak resident set since the process started
	cpu  time.Duration
}

// benchScale runs o.pipelines deployments, spread over o.agents simulated
// agents' accounts, through one `sortie server` on SQLite, then through
// o.replicas `sortie server` replicas sharing one PostgreSQL database, and
// prints both with their ratios.
func benchScale(ctx context.Context, out io.Writer, bin string, o scaleOptions) error {
	if o.pipelines < 2 || o.agents < 1 || o.concurrency < 1 || o.replicas < 1 {
		return errors.New("-scale-pipelines must be at least 2, -scale-agents, -scale-concurrency and -scale-replicas at least 1")
	}
	dir, err := os.MkdirTemp("", "sortie-bench-scale-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Fprintf(os.Stderr, "bench: scale, %d pipelines over %d simulated agents, %d at a time: one server on SQLite\n", o.pipelines, o.agents, o.concurrency)
	lite, err := scaleSQLite(ctx, bin, filepath.Join(dir, "sqlite"), o)
	if err != nil {
		return fmt.Errorf("SQLite: %w", err)
	}
	fmt.Fprintf(os.Stderr, "bench: scale: %d replicas on PostgreSQL\n", o.replicas)
	pg, err := scalePostgres(ctx, bin, filepath.Join(dir, "postgres"), o)
	if err != nil {
		return fmt.Errorf("PostgreSQL: %w", err)
	}
	printScale(out, o, lite, pg)
	return nil
}

func scaleSQLite(ctx context.Context, bin, dir string, o scaleOptions) (*scaleSide, error) {
	srv, err := startServerArgs(ctx, bin, "sortie server (SQLite)", nil, filepath.Join(dir, "server"))
	if err != nil {
		return nil, err
	}
	defer srv.close()
	return runScale(ctx, "SQLite, 1 server", []*server{srv}, nil, o)
}

func scalePostgres(ctx context.Context, bin, dir string, o scaleOptions) (*scaleSide, error) {
	// Durable, as SQLite is (synchronous=FULL): fsync on.
	pg, err := pgserver.Start(pgserver.Options{Durable: true})
	if err != nil {
		return nil, err
	}
	defer pg.Stop()
	url, err := pg.CreateDatabase(ctx, "sortie")
	if err != nil {
		return nil, err
	}
	// Replicas share the database and the master key, as in production.
	env := []string{"SORTIE_DATABASE_URL=" + url, "SORTIE_MASTER_KEY=" + secrets.NewKey()}
	first, err := startServerArgs(ctx, bin, "sortie server (PostgreSQL, replica 1)", env, filepath.Join(dir, "server-1"))
	if err != nil {
		return nil, err
	}
	defer first.close()
	srvs := []*server{first}
	for i := 2; i <= o.replicas; i++ {
		p, err := startProc(fmt.Sprintf("sortie server (PostgreSQL, replica %d)", i), bin, env,
			"server", "--addr", "127.0.0.1:0", "--data-dir", filepath.Join(dir, fmt.Sprintf("server-%d", i)))
		if err != nil {
			return nil, err
		}
		s := &server{bin: bin, proc: p}
		defer s.close()
		m, err := p.waitLine(ctx, listening)
		if err != nil {
			return nil, err
		}
		// The bootstrap admin credential is in the database: the same
		// client id and secret get a token from every replica.
		if s.api, err = first.clientOf(m[1]); err != nil {
			return nil, err
		}
		srvs = append(srvs, s)
	}
	return runScale(ctx, fmt.Sprintf("PostgreSQL, %d replicas", o.replicas), srvs, pg, o)
}

// runScale connects the agents, runs the pipelines through srvs and
// measures them.
func runScale(ctx context.Context, name string, srvs []*server, pg *pgserver.Server, o scaleOptions) (*scaleSide, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rec := &arrivals{first: map[string]time.Time{}}
	var wg sync.WaitGroup
	defer wg.Wait() // after cancel: every agent's Run has returned
	defer cancel()
	fmt.Fprintf(os.Stderr, "bench: scale: connecting %d simulated agents (the token endpoint allows one address 30 tokens, then one a second, per server: all come from 127.0.0.1)\n", o.agents)
	ids := make([]string, o.agents)
	for k := range ids {
		ids[k] = fmt.Sprintf("agent-%03d", k)
		// Each agent has a credential of its own, made through the API,
		// and connects to the replicas in turn, as behind a balancer.
		nc, err := srvs[0].api.CreateCredential(ctx, api.CreateCredentialRequest{Name: "bench " + ids[k], Roles: []string{pipeline.RoleAgent}})
		if err != nil {
			return nil, err
		}
		conn := &connectedLog{ch: make(chan struct{})}
		a, err := agent.New(agent.Options{
			ServerURL: srvs[k%len(srvs)].api.Server(), AgentID: ids[k], ClientID: nc.ClientID, ClientSecret: nc.ClientSecret,
			Executor: func(string) runner.Executor { return rec }, Version: "bench", Log: slog.New(conn),
		})
		if err != nil {
			return nil, err
		}
		wg.Go(func() { a.Run(ctx) })
		select {
		case <-conn.ch:
		case <-time.After(time.Minute):
			return nil, fmt.Errorf("simulated agent %s did not connect within a minute", ids[k])
		}
	}
	for _, s := range srvs {
		if err := waitAgents(ctx, s, ids); err != nil {
			return nil, err
		}
	}

	before := make([]time.Duration, len(srvs))
	for i, s := range srvs {
		before[i] = cpuTime(s.proc.pid(), false)
	}
	var dbBefore time.Duration
	if pg != nil {
		dbBefore = treeCPU(pg.Pid())
	}
	side := &scaleSide{name: name, pipelines: o.pipelines, agents: o.agents}
	var (
		mu      sync.Mutex
		runErr  error
		next    = make(chan int)
		workers sync.WaitGroup
	)
	start := time.Now()
	for range o.concurrency {
		workers.Go(func() {
			for i := range next {
				kind, d, err := scalePipeline(ctx, srvs, rec, i, ids[i%len(ids)], o.pause)
				mu.Lock()
				switch {
				case err != nil:
					if runErr == nil {
						runErr = err
						cancel()
					}
				case kind == "approval":
					side.approval = append(side.approval, d)
				default:
					side.timer = append(side.timer, d)
				}
				mu.Unlock()
			}
		})
	}
feed:
	for i := range o.pipelines {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	workers.Wait()
	side.took = time.Since(start)
	if runErr != nil {
		return nil, runErr
	}
	for i, s := range srvs {
		m, err := readMemory(s.proc.pid())
		if err != nil {
			return nil, err
		}
		side.servers = append(side.servers, serverUsage{name: s.proc.name, hwm: m.hwm, cpu: cpuTime(s.proc.pid(), false) - before[i]})
	}
	if pg != nil {
		side.database = &serverUsage{name: "postgres (all its processes)", cpu: treeCPU(pg.Pid()) - dbBefore}
	}
	return side, nil
}

// scalePipeline runs deployment i for account through srvs (the start on
// one, the approval on the next, as a balancer spreading calls would) and
// returns its cause → command time: from just before the approval call,
// or from the timed pause's deadline, to the moment the agent got the
// deployment's command.
func scalePipeline(ctx context.Context, srvs []*server, rec *arrivals, i int, account string, pause time.Duration) (string, time.Duration, error) {
	kind := "approval"
	gate := "untilApproved: true"
	if i%2 == 1 {
		kind = "timer"
		gate = fmt.Sprintf("duration: %d, unit: seconds", int(pause/time.Second))
	}
	file := strings.NewReplacer("APPLICATION", fmt.Sprintf("scale-%05d", i), "ACCOUNT", account, "GATE", gate).Replace(scaleFile)
	s := srvs[i%len(srvs)]
	id, err := s.start(ctx, api.StartRequest{FileName: "scale.yml", File: file,
		Manifests: map[string]string{"web.yml": strings.ReplaceAll(webManifest, "IMAGE", "registry.example/web:1")}})
	if err != nil {
		return kind, 0, fmt.Errorf("start pipeline %d: %w", i, err)
	}
	var cause time.Time
	var seq int64
	if kind == "timer" {
		// The deadline is in the pipeline while the pause runs.
		deadline := func(p *api.PipelineView) bool {
			for _, st := range p.Targets[0].Steps {
				if st.Group == pipeline.GroupBefore && st.Kind == pipeline.KindPause && !st.Deadline.IsZero() {
					cause = st.Deadline
					return true
				}
			}
			return false
		}
		if _, seq, err = s.follow(ctx, id, 0, deadline); err != nil {
			return kind, 0, err
		}
	} else {
		if _, seq, err = s.follow(ctx, id, 0, func(p *api.PipelineView) bool { return p.Status == pipeline.StatusAwaitingApproval }); err != nil {
			return kind, 0, err
		}
		if t, ok := rec.at(id); ok {
			return kind, 0, fmt.Errorf("pipeline %s: a command reached the agent at %v, before the approval", id, t)
		}
		a := srvs[(i+1)%len(srvs)]
		cause = time.Now()
		if _, err := a.api.Act(ctx, id, client.ActionApprove, api.ActionRequest{}); err != nil {
			return kind, 0, fmt.Errorf("approve %s: %w", id, err)
		}
		// The replica an action reaches takes the pipeline over: follow
		// it there. (The replica that drove it until then answers GET
		// with its own, stale copy until it sees its lease lost, up to
		// a third of the lease's TTL later.)
		s = a
	}
	p, _, err := s.follow(ctx, id, seq, ended)

	if err != nil {
		return kind, 0, err
	}
	if p.Status != pipeline.StatusSucceeded {
		return kind, 0, fmt.Errorf("pipeline %s ended %s: %s", id, p.Status, describe(p))
	}
	got, ok := rec.at(id)
	if !ok {
		return kind, 0, fmt.Errorf("pipeline %s succeeded and no command of it reached an agent", id)
	}
	if got.Before(cause) {
		return kind, 0, fmt.Errorf("pipeline %s: its command reached the agent %v before its %s", id, cause.Sub(got), kind)
	}
	return kind, got.Sub(cause), nil
}

// arrivals is the simulated agents' executor: it notes when each
// pipeline's first command reached an agent and answers it at once with
// success (instantExecutor), touching no cluster.
type arrivals struct {
	mu    sync.Mutex
	first map[string]time.Time // by pipeline id
}

func (a *arrivals) Execute(ctx context.Context, job runner.Job) pipeline.CommandResult {
	now := time.Now()
	a.mu.Lock()
	if _, ok := a.first[job.Command.Pipeline]; !ok {
		a.first[job.Command.Pipeline] = now
	}
	a.mu.Unlock()
	return instantExecutor{}.Execute(ctx, job)
}

func (a *arrivals) HasAccount(_, _ string) bool { return true }

func (a *arrivals) at(id string) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.first[id]
	return t, ok
}

// connectedLog is a simulated agent's log: it closes ch at the agent's
// first "connected to the server" and drops everything else.
type connectedLog struct {
	once sync.Once
	ch   chan struct{}
}

func (c *connectedLog) Enabled(context.Context, slog.Level) bool { return true }
func (c *connectedLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "connected to the server" {
		c.once.Do(func() { close(c.ch) })
	}
	return nil
}
func (c *connectedLog) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *connectedLog) WithGroup(string) slog.Handler      { return c }

// waitAgents waits until s lists every agent of ids (on PostgreSQL, those
// connected to other replicas too), checking again each 100 ms for a
// minute: the list has no event stream to wait on.
func waitAgents(ctx context.Context, s *server, ids []string) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	limit := time.After(time.Minute)
	for {
		list, err := s.api.ListAgents(ctx)
		if err != nil {
			return err
		}
		seen := 0
		for _, a := range list {
			if slices.Contains(ids, a.ID) {
				seen++
			}
		}
		if seen == len(ids) {
			return nil
		}
		select {
		case <-tick.C:
		case <-limit:
			return fmt.Errorf("%s lists %d of the %d agents after a minute", s.proc.name, seen, len(ids))
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// percentile is the p-th percentile (0 < p ≤ 100) of ds, nearest rank.
func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	k := int(p/100*float64(len(s))+0.999999) - 1
	return s[max(0, min(k, len(s)-1))]
}

func printScale(out io.Writer, o scaleOptions, lite, pg *scaleSide) {
	fmt.Fprintf(out, "Scale: %d pipelines, %d agents, %d in flight; one `sortie server` on SQLite beside %d replicas on one PostgreSQL\n", o.pipelines, o.agents, o.concurrency, o.replicas)
	fmt.Fprintf(out, "(SIMULATED agents: package agent's real code over the real gRPC protocol, in the benchmark's process, answering each command at once with success: the control plane is measured, not clusters; every process on this one machine; PostgreSQL and SQLite both sync each commit)\n")
	fmt.Fprintf(out, "Half the pipelines wait for an approval (cause: the approve call) and half for a %v pause (cause: its deadline) before their one deploy command.\n\n", o.pause)
	ratio := func(a, b float64) string {
		if b == 0 {
			return "—"
		}
		return fmt.Sprintf("%.2f", a/b)
	}
	dur := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }
	rows := [][]string{{"", lite.name, pg.name, "PG / SQLite"}}
	for _, c := range []struct {
		what       string
		lite, pg   []time.Duration
		percentile float64
	}{
		{"approval → command, p50", lite.approval, pg.approval, 50},
		{"approval → command, p99", lite.approval, pg.approval, 99},
		{"timer → command, p50", lite.timer, pg.timer, 50},
		{"timer → command, p99", lite.timer, pg.timer, 99},
	} {
		a, b := percentile(c.lite, c.percentile), percentile(c.pg, c.percentile)
		rows = append(rows, []string{c.what, dur(a), dur(b), ratio(float64(b), float64(a))})
	}
	rateOf := func(s *scaleSide) float64 { return float64(s.pipelines) / s.took.Seconds() }
	rows = append(rows, []string{"pipelines completed per second", fmt.Sprintf("%.1f", rateOf(lite)), fmt.Sprintf("%.1f", rateOf(pg)), ratio(rateOf(pg), rateOf(lite))})
	var liteCPU, pgCPU time.Duration
	var liteHWM, pgHWM int64
	for _, s := range lite.servers {
		liteCPU += s.cpu
		liteHWM += s.hwm
	}
	for _, s := range pg.servers {
		pgCPU += s.cpu
		pgHWM += s.hwm
	}
	rows = append(rows,
		[]string{"peak RSS, all sortie servers", mib(liteHWM), mib(pgHWM), ratio(float64(pgHWM), float64(liteHWM))},
		[]string{"CPU, all sortie servers", secs(liteCPU), secs(pgCPU), ratio(float64(pgCPU), float64(liteCPU))})
	if pg.database != nil {
		rows = append(rows, []string{"CPU, PostgreSQL (postmaster and backends)", "—", secs(pg.database.cpu), "—"})
	}
	table(out, rows)
	fmt.Fprintln(out)
	per := [][]string{{"server process", "peak RSS (VmHWM)", "CPU in the timed phase"}}
	for _, side := range []*scaleSide{lite, pg} {
		for _, s := range side.servers {
			per = append(per, []string{s.name, mib(s.hwm), secs(s.cpu)})
		}
	}
	table(out, per)
	fmt.Fprintf(out, "timed phase: %.1f s on SQLite, %.1f s on PostgreSQL; CPU is user + system time from /proc/PID/stat\n\n", lite.took.Seconds(), pg.took.Seconds())
}

func secs(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }
