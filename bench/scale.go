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

	"github.com/jackc/pgx/v5"

	"github.com/sortie-cd/sortie/agent"
	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/client"
	"github.com/sortie-cd/sortie/internal/pgserver"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/runner"
	"github.com/sortie-cd/sortie/secrets"
	sortieserver "github.com/sortie-cd/sortie/server"
)

//go:embed testdata/scale.yml
var scaleFile string

// scaleOptions size the scale benchmark.
type scaleOptions struct {
	pipelines   int           // pipelines each side runs, all in flight at once
	agents      int           // simulated agents, one account each
	concurrency int           // API calls (starts, approvals) made at once
	replicas    int           // servers sharing the PostgreSQL database
	pause       time.Duration // the timed pause of the timer pipelines; 0: long enough for every start
	leaseTTL    time.Duration // the replicas' --lease-ttl; 0: the server's default
	takeover    int           // pipelines the killed replica holds in the takeover measurement
}

// ttl is the replicas' lease TTL.
func (o scaleOptions) ttl() time.Duration {
	if o.leaseTTL > 0 {
		return o.leaseTTL
	}
	return sortieserver.DefaultLeaseTTL
}

// timedPause is the pause of the timer pipelines: o.pause, or, when it is
// zero, a whole number of seconds long enough that every pipeline is
// started (at 25 a second, below what one server on this machine takes)
// before the first pause ends, so they are all in flight at once.
func (o scaleOptions) timedPause() time.Duration {
	if o.pause > 0 {
		return o.pause
	}
	return max(5, time.Duration(o.pipelines/25)) * time.Second
}

// scaleSide is what one side of the scale benchmark measured.
type scaleSide struct {
	name              string
	approval, timer   []time.Duration // cause → command, one per pipeline
	took              time.Duration   // the timed phase, first start to last end
	starting          time.Duration   // until every pipeline was at its gate
	approving         time.Duration   // the approvals, all made while every other pipeline waits
	early             int             // timer pipelines whose pause ended before every pipeline was started
	servers           []serverUsage
	database          *serverUsage // PostgreSQL's processes, CPU only
	pipelines, agents int
	// takeover: from the kill -9 of a replica to another's claim of each
	// pipeline it held (PostgreSQL with replicas only).
	takeover []time.Duration
}

// serverUsage is one process's peak memory and the CPU it used in the
// timed phase.
type serverUsage struct {
	name string
	hwm  int64 // bytes, VmHWM: the peak resident set since the process started
	cpu  time.Duration
}

// benchScale runs o.pipelines deployments, spread over o.agents simulated
// agents' accounts, all in flight at once, through one `sortie server` on
// SQLite, then through one on PostgreSQL, then through o.replicas replicas
// sharing one PostgreSQL database, and prints the three with their ratios.
func benchScale(ctx context.Context, out io.Writer, bin string, o scaleOptions) error {
	if o.pipelines < 2 || o.agents < 1 || o.concurrency < 1 || o.replicas < 1 {
		return errors.New("-scale-pipelines must be at least 2, -scale-agents, -scale-concurrency and -scale-replicas at least 1")
	}
	dir, err := os.MkdirTemp("", "sortie-bench-scale-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Fprintf(os.Stderr, "bench: scale, %d pipelines in flight over %d simulated agents: one server on SQLite\n", o.pipelines, o.agents)
	lite, err := scaleSQLite(ctx, bin, filepath.Join(dir, "sqlite"), o)
	if err != nil {
		return fmt.Errorf("SQLite: %w", err)
	}
	fmt.Fprintf(os.Stderr, "bench: scale: one server on PostgreSQL\n")
	one, err := scalePostgres(ctx, bin, filepath.Join(dir, "postgres-1"), o, 1)
	if err != nil {
		return fmt.Errorf("PostgreSQL, one server: %w", err)
	}
	fmt.Fprintf(os.Stderr, "bench: scale: %d replicas on PostgreSQL\n", o.replicas)
	pg, err := scalePostgres(ctx, bin, filepath.Join(dir, "postgres"), o, o.replicas)
	if err != nil {
		return fmt.Errorf("PostgreSQL: %w", err)
	}
	printScale(out, o, lite, one, pg)
	return nil
}

func scaleSQLite(ctx context.Context, bin, dir string, o scaleOptions) (*scaleSide, error) {
	srv, err := startServerArgs(ctx, bin, "sortie server (SQLite)", nil, filepath.Join(dir, "server"))
	if err != nil {
		return nil, err
	}
	defer srv.close()
	return runScale(ctx, "SQLite, 1 server", []*server{srv}, nil, "", o)
}

func scalePostgres(ctx context.Context, bin, dir string, o scaleOptions, replicas int) (*scaleSide, error) {
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
	env := []string{"SORTIE_DATABASE_URL=" + url, "SORTIE_MASTER_KEY=" + secrets.NewKey(), "SORTIE_LEASE_TTL=" + o.ttl().String()}
	first, err := startServerArgs(ctx, bin, "sortie server (PostgreSQL, replica 1)", append(env, "SORTIE_REPLICA_ID="+replicaName(1)), filepath.Join(dir, "server-1"))
	if err != nil {
		return nil, err
	}
	defer first.close()
	srvs := []*server{first}
	for i := 2; i <= replicas; i++ {
		p, err := startProc(fmt.Sprintf("sortie server (PostgreSQL, replica %d)", i), bin, append(env, "SORTIE_REPLICA_ID="+replicaName(i)),
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
	name := "PostgreSQL, 1 server"
	if replicas > 1 {
		name = fmt.Sprintf("PostgreSQL, %d replicas", replicas)
	}
	return runScale(ctx, name, srvs, pg, url, o)
}

// runScale connects the agents, runs the pipelines through srvs and
// measures them.
func runScale(ctx context.Context, name string, srvs []*server, pg *pgserver.Server, url string, o scaleOptions) (*scaleSide, error) {
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
	var mu sync.Mutex
	start := time.Now()
	// 1. Every pipeline is started and reaches its gate: all are in flight.
	waiting := make([]*gated, o.pipelines)
	err := inParallel(ctx, o.concurrency, o.pipelines, func(i int) error {
		g, err := startGated(ctx, srvs, rec, i, ids[i%len(ids)], o.timedPause())
		waiting[i] = g
		return err
	})
	if err != nil {
		return nil, err
	}
	side.starting = time.Since(start)
	for _, g := range waiting {
		if g.kind == "timer" && g.cause.Before(start.Add(side.starting)) {
			side.early++
		}
	}
	// 2. The approvals, while the timer pipelines wait for their pauses.
	approved := time.Now()
	err = inParallel(ctx, o.concurrency, o.pipelines, func(i int) error {
		if waiting[i].kind != "approval" {
			return nil
		}
		return waiting[i].approve(ctx, srvs, rec)
	})
	if err != nil {
		return nil, err
	}
	side.approving = time.Since(approved)
	// 3. Each ends, with its command after its cause.
	err = inParallel(ctx, o.concurrency, o.pipelines, func(i int) error {
		d, err := waiting[i].end(ctx, rec)
		mu.Lock()
		defer mu.Unlock()
		if waiting[i].kind == "approval" {
			side.approval = append(side.approval, d)
		} else {
			side.timer = append(side.timer, d)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	side.took = time.Since(start)
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
	if len(srvs) > 1 && o.takeover > 0 {
		if side.takeover, err = measureTakeover(ctx, srvs, rec, ids, url, o); err != nil {
			return nil, fmt.Errorf("takeover: %w", err)
		}
	}
	return side, nil
}

// replicaName is the --replica-id of the i-th replica (from 1).
func replicaName(i int) string { return fmt.Sprintf("replica-%d", i) }

// measureTakeover starts o.takeover deployments on the last replica of
// srvs, each waiting for an approval (so that replica holds their leases),
// kills it with SIGKILL, and times, from the kill, each pipeline's claim
// by a surviving replica (its lease's owner in the database, read every
// 20 ms). Then it approves each on a survivor and checks that it ends
// SUCCEEDED, its command sent once more after its cause.
func measureTakeover(ctx context.Context, srvs []*server, rec *arrivals, ids []string, url string, o scaleOptions) ([]time.Duration, error) {
	victim, survivors := srvs[len(srvs)-1], srvs[:len(srvs)-1]
	victimID := replicaName(len(srvs))
	// Accounts of agents connected to the survivors: the benchmark's agents
	// dial one server each, not a balancer, so the victim's agents stay
	// away with it.
	var accounts []string
	for k, id := range ids {
		if k%len(srvs) != len(srvs)-1 {
			accounts = append(accounts, id)
		}
	}
	if len(accounts) == 0 {
		return nil, errors.New("every agent is connected to the replica to kill: give more agents")
	}
	held := make([]*gated, o.takeover)
	for j := range held {
		i := 2 * (o.pipelines + j) // even: an approval gate; beyond the pipelines run: a new application
		g, err := startGated(ctx, []*server{victim}, rec, i, accounts[j%len(accounts)], o.timedPause())
		if err != nil {
			return nil, err
		}
		held[j] = g
	}
	db, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, err
	}
	defer db.Close(context.Background())
	owners := func() (map[string]string, error) {
		list := make([]string, len(held))
		for j, g := range held {
			list[j] = g.id
		}
		rows, err := db.Query(ctx, "SELECT id, owner FROM pipelines WHERE id = ANY($1)", list)
		if err != nil {
			return nil, err
		}
		out := map[string]string{}
		var id, owner string
		_, err = pgx.ForEachRow(rows, []any{&id, &owner}, func() error { out[id] = owner; return nil })
		return out, err
	}
	before, err := owners()
	if err != nil {
		return nil, err
	}
	for _, g := range held {
		if before[g.id] != victimID {
			return nil, fmt.Errorf("pipeline %s started on %s is held by %q", g.id, victimID, before[g.id])
		}
	}
	fmt.Fprintf(os.Stderr, "bench: scale: kill -9 %s, holding %d pipelines (lease TTL %v)\n", victimID, len(held), o.ttl())
	killed := time.Now()
	if err := victim.proc.cmd.Process.Kill(); err != nil {
		return nil, err
	}
	claimed := map[string]time.Duration{}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	limit := time.After(2*o.ttl() + 30*time.Second)
	for len(claimed) < len(held) {
		select {
		case <-tick.C:
		case <-limit:
			return nil, fmt.Errorf("%d of the %d pipelines of the killed replica were claimed within 2 TTL + 30 s", len(claimed), len(held))
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		now, err := owners()
		if err != nil {
			return nil, err
		}
		at := time.Since(killed)
		for id, owner := range now {
			if _, ok := claimed[id]; !ok && owner != "" && owner != victimID {
				claimed[id] = at
			}
		}
	}
	var out []time.Duration
	for _, g := range held {
		out = append(out, claimed[g.id])
		g.on = survivors[0]
		if err := g.approve(ctx, survivors, rec); err != nil {
			return nil, err
		}
		if _, err := g.end(ctx, rec); err != nil {
			return nil, fmt.Errorf("after the takeover: %w", err)
		}
	}
	return out, nil
}

// gated is a pipeline of the scale benchmark waiting at its gate.
type gated struct {
	id, kind string
	i        int
	on       *server   // the server followed
	seq      int64     // its events seen
	cause    time.Time // a timer's deadline, or the approve call's start
}

// startGated starts deployment i for account on one of srvs (in turn, as
// a balancer spreading calls would) and waits until it is at its gate:
// awaiting approval, or in its timed pause (whose deadline is the cause).
func startGated(ctx context.Context, srvs []*server, rec *arrivals, i int, account string, pause time.Duration) (*gated, error) {
	g := &gated{kind: "approval", i: i, on: srvs[i%len(srvs)]}
	gate := "untilApproved: true"
	if i%2 == 1 {
		g.kind = "timer"
		gate = fmt.Sprintf("duration: %d, unit: seconds", int(pause/time.Second))
	}
	file := strings.NewReplacer("APPLICATION", fmt.Sprintf("scale-%05d", i), "ACCOUNT", account, "GATE", gate).Replace(scaleFile)
	var err error
	g.id, err = g.on.start(ctx, api.StartRequest{FileName: "scale.yml", File: file,
		Manifests: map[string]string{"web.yml": strings.ReplaceAll(webManifest, "IMAGE", "registry.example/web:1")}})
	if err != nil {
		return g, fmt.Errorf("start pipeline %d: %w", i, err)
	}
	at := func(p *api.PipelineView) bool { return p.Status == pipeline.StatusAwaitingApproval }
	if g.kind == "timer" {
		// The deadline is in the pipeline while the pause runs.
		at = func(p *api.PipelineView) bool {
			for _, st := range p.Targets[0].Steps {
				if st.Group == pipeline.GroupBefore && st.Kind == pipeline.KindPause && !st.Deadline.IsZero() {
					g.cause = st.Deadline
					return true
				}
			}
			return false
		}
	}
	if _, g.seq, err = g.on.follow(ctx, g.id, 0, at); err != nil {
		return g, err
	}
	if t, ok := rec.at(g.id); ok && g.kind == "approval" {
		return g, fmt.Errorf("pipeline %s: a command reached the agent at %v, before the approval", g.id, t)
	}
	return g, nil
}

// approve approves g on the next server after the one that started it.
// The replica an action reaches takes the pipeline over; it is followed
// there.
func (g *gated) approve(ctx context.Context, srvs []*server, rec *arrivals) error {
	a := srvs[(g.i+1)%len(srvs)]
	g.cause = time.Now()
	if _, err := a.api.Act(ctx, g.id, client.ActionApprove, api.ActionRequest{}); err != nil {
		return fmt.Errorf("approve %s: %w", g.id, err)
	}
	g.on = a
	return nil
}

// end waits for g's end and returns its cause → command time: from its
// cause to the moment the agent got the deployment's command.
func (g *gated) end(ctx context.Context, rec *arrivals) (time.Duration, error) {
	p, _, err := g.on.follow(ctx, g.id, g.seq, ended)
	if err != nil {
		return 0, err
	}
	if p.Status != pipeline.StatusSucceeded {
		return 0, fmt.Errorf("pipeline %s ended %s: %s", g.id, p.Status, describe(p))
	}
	got, ok := rec.at(g.id)
	if !ok {
		return 0, fmt.Errorf("pipeline %s succeeded and no command of it reached an agent", g.id)
	}
	if got.Before(g.cause) {
		return 0, fmt.Errorf("pipeline %s: its command reached the agent %v before its %s", g.id, g.cause.Sub(got), g.kind)
	}
	return got.Sub(g.cause), nil
}

// inParallel calls f(0) … f(n-1), width at a time, and returns the first
// error (the calls not yet made are then not made).
func inParallel(ctx context.Context, width, n int, f func(int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for range min(width, n) {
		wg.Go(func() {
			for i := range next {
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
						cancel()
					}
					mu.Unlock()
				}
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	return first
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

func printScale(out io.Writer, o scaleOptions, lite, one, pg *scaleSide) {
	fmt.Fprintf(out, "Scale: %d pipelines in flight at once, %d agents; one `sortie server` on SQLite, one on PostgreSQL, %d replicas on one PostgreSQL\n", o.pipelines, o.agents, o.replicas)
	fmt.Fprintf(out, "(SIMULATED agents: package agent's real code over the real gRPC protocol, in the benchmark's process, answering each command at once with success: the control plane is measured, not clusters; every process on this one machine; PostgreSQL and SQLite both sync each commit)\n")
	fmt.Fprintf(out, "Every pipeline is started and at its gate before the first approval: half wait for an approval (cause: the approve call, %d at a time), half for a %v pause (cause: its deadline), then run their one deploy command.\n\n", o.concurrency, o.timedPause())
	ratio := func(a, b float64) string {
		if b == 0 {
			return "—"
		}
		return fmt.Sprintf("%.2f", a/b)
	}
	dur := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }
	sides := []*scaleSide{lite, one, pg}
	rows := [][]string{{"", lite.name, one.name, pg.name, "PG×" + fmt.Sprint(o.replicas) + " / PG×1", "PG×" + fmt.Sprint(o.replicas) + " / SQLite"}}
	row := func(what string, v func(*scaleSide) float64, show func(float64) string) {
		r := []string{what}
		for _, sd := range sides {
			r = append(r, show(v(sd)))
		}
		rows = append(rows, append(r, ratio(v(pg), v(one)), ratio(v(pg), v(lite))))
	}
	asDur := func(x float64) string { return dur(time.Duration(x)) }
	rate := func(x float64) string { return fmt.Sprintf("%.1f", x) }
	for _, c := range []struct {
		what string
		of   func(*scaleSide) []time.Duration
		p    float64
	}{
		{"approval → command, p50", func(s *scaleSide) []time.Duration { return s.approval }, 50},
		{"approval → command, p99", func(s *scaleSide) []time.Duration { return s.approval }, 99},
		{"timer → command, p50", func(s *scaleSide) []time.Duration { return s.timer }, 50},
		{"timer → command, p99", func(s *scaleSide) []time.Duration { return s.timer }, 99},
	} {
		row(c.what, func(s *scaleSide) float64 { return float64(percentile(c.of(s), c.p)) }, asDur)
	}
	approvals := func(s *scaleSide) float64 { return float64(len(s.approval)) / s.approving.Seconds() }
	row("starts per second (to the gate)", func(s *scaleSide) float64 { return float64(s.pipelines) / s.starting.Seconds() }, rate)
	row("approvals per second (approved and their command sent)", approvals, rate)
	row("pipelines completed per second", func(s *scaleSide) float64 { return float64(s.pipelines) / s.took.Seconds() }, rate)
	hwm := func(s *scaleSide) float64 {
		var n int64
		for _, u := range s.servers {
			n += u.hwm
		}
		return float64(n)
	}
	cpu := func(s *scaleSide) float64 {
		var d time.Duration
		for _, u := range s.servers {
			d += u.cpu
		}
		return float64(d)
	}
	row("peak RSS, all sortie servers", hwm, func(x float64) string { return mib(int64(x)) })
	row("CPU, all sortie servers", cpu, func(x float64) string { return secs(time.Duration(x)) })
	row("CPU, PostgreSQL (postmaster and backends)", func(s *scaleSide) float64 {
		if s.database == nil {
			return 0
		}
		return float64(s.database.cpu)
	}, func(x float64) string {
		if x == 0 {
			return "—"
		}
		return secs(time.Duration(x))
	})
	table(out, rows)
	fmt.Fprintln(out)
	per := [][]string{{"server process", "peak RSS (VmHWM)", "CPU in the timed phase"}}
	for _, side := range sides {
		for _, s := range side.servers {
			per = append(per, []string{side.name + ": " + s.name, mib(s.hwm), secs(s.cpu)})
		}
	}
	table(out, per)
	for _, side := range sides {
		fmt.Fprintf(out, "%s: timed phase %.1f s (starts %.1f s, approvals %.1f s)", side.name, side.took.Seconds(), side.starting.Seconds(), side.approving.Seconds())
		if side.early > 0 {
			fmt.Fprintf(out, "; %d timed pauses ended before every pipeline was started", side.early)
		}
		fmt.Fprintln(out)
	}
	fmt.Fprintln(out, "CPU is user + system time from /proc/PID/stat.")
	// The goals, said against what was measured.
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}
	p99 := max(percentile(lite.approval, 99), percentile(lite.timer, 99))
	fmt.Fprintf(out, "goal, %d in flight on one SQLite server, p99 < 1 s: %v, %s; RSS < 1 GiB: %s, %s\n", o.pipelines, p99.Round(time.Millisecond), verdict(p99 < time.Second), mib(int64(hwm(lite))), verdict(hwm(lite) < 1<<30))
	if len(pg.takeover) > 0 {
		worst := slices.Max(pg.takeover)
		fmt.Fprintf(out, "takeover after kill -9 of a replica holding %d pipelines: p50 %v, max %v from the kill to another replica's claim (lease TTL %v)\n",
			len(pg.takeover), percentile(pg.takeover, 50).Round(time.Millisecond), worst.Round(time.Millisecond), o.ttl())
		fmt.Fprintf(out, "goal, takeover within lease TTL + 1 s: %s\n", verdict(worst <= o.ttl()+time.Second))
	}
	fmt.Fprintf(out, "goal, %d replicas ≥ 2× the approvals per second of one server on the same database: %.2f×, %s (on this 2-core machine every replica and the database share two cores)\n\n", o.replicas, approvals(pg)/approvals(one), verdict(approvals(pg) >= 2*approvals(one)))
}

func secs(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }
