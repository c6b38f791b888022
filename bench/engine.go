package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/runner"
	"github.com/sortie-cd/sortie/store"
	"github.com/sortie-cd/sortie/store/sqlite"
)

//go:embed testdata/engine.yml
var engineFile string

// benchEngine measures how many transitions per second the runner applies
// and persists with the SQLite store (synchronous=FULL, as the server runs
// it): concurrency applications each deploy a 10-step canary again and again
// until pipelines have run. The executor answers every command at once with
// success, so this measures the engine and store path — transition, save
// with its events, timer, dispatch to a worker, result back through the
// runner — and not Kubernetes; the rollout benchmark measures that.
//
// Beside it, in the same run: the store alone saving the same pipeline
// state with as many events, from as many goroutines (the ceiling the
// runner works under), and the engine alone in memory.
func benchEngine(ctx context.Context, out io.Writer, pipelines, concurrency int) error {
	if pipelines < 1 || concurrency < 1 || pipelines < concurrency {
		return errors.New("-pipelines and -concurrency must be at least 1, and -pipelines at least -concurrency")
	}
	dir, err := os.MkdirTemp("", "sortie-bench-engine-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Fprintf(os.Stderr, "bench: engine, %d pipelines, %d at a time\n", pipelines, concurrency)

	run, err := runnerRate(ctx, filepath.Join(dir, "runner.db"), pipelines, concurrency)
	if err != nil {
		return err
	}
	eventsPerSave := int(float64(run.events)/float64(run.transitions) + 0.5)
	saves, err := storeRate(ctx, filepath.Join(dir, "store.db"), run.sample, run.transitions, concurrency, eventsPerSave)
	if err != nil {
		return err
	}
	engine, err := engineRate(run.sample.State.Spec, pipelines)
	if err != nil {
		return err
	}

	rate := run.rate()
	fmt.Fprintf(out, "Engine transitions with the SQLite store (instant executor: the engine and store path, not Kubernetes)\n")
	fmt.Fprintf(out, "%d pipelines (10-step canary), %d at a time: %d transitions, %.1f per pipeline, %.1f events per transition, %.0f pipelines/s\n\n",
		pipelines, concurrency, run.transitions, float64(run.transitions)/float64(pipelines), float64(run.events)/float64(run.transitions), float64(pipelines)/run.took.Seconds())
	table(out, [][]string{
		{"", "rate", "runner / this"},
		{"runner + SQLite, each transition saved", fmt.Sprintf("%.0f transitions/s", rate), "1.00"},
		{fmt.Sprintf("baseline: SQLite SavePipeline alone (%d events each)", eventsPerSave), fmt.Sprintf("%.0f saves/s", saves), fmt.Sprintf("%.2f", rate/saves)},
		{"baseline: engine alone, in memory", fmt.Sprintf("%.0f transitions/s", engine), fmt.Sprintf("%.4f", rate/engine)},
	})
	fmt.Fprintln(out)
	return nil
}

// runResult is what the runner did in the timed part.
type runResult struct {
	transitions, events int64
	took                time.Duration
	// sample is one finished pipeline, for the baselines.
	sample *store.Pipeline
}

func (r runResult) rate() float64 { return float64(r.transitions) / r.took.Seconds() }

func runnerRate(ctx context.Context, path string, pipelines, concurrency int) (runResult, error) {
	db, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		return runResult{}, err
	}
	defer db.Close()
	cs := &countingStore{Store: db, done: map[string]chan string{}}
	apps := make([]string, concurrency)
	for i := range apps {
		apps[i] = fmt.Sprintf("app-%d", i)
		cs.done[apps[i]] = make(chan string, 1)
	}
	r := runner.New(runner.Options{Store: cs, Executor: instantExecutor{}})
	defer r.Close()

	deploy := func(app string) (string, error) {
		req := runner.StartRequest{
			FileName:  "engine.yml",
			File:      strings.ReplaceAll(engineFile, "APPLICATION", app),
			Manifests: map[string]string{"web.yml": strings.ReplaceAll(webManifest, "IMAGE", "registry.example/"+app+":1")},
		}
		if _, err := r.Start(ctx, benchUser, store.DefaultTenant, req); err != nil {
			return "", err
		}
		select {
		case id := <-cs.done[app]:
			return id, nil
		case <-time.After(time.Minute):
			return "", fmt.Errorf("a pipeline of %s did not end within a minute", app)
		}
	}
	// Untimed: each application's first deployment, which goes straight to
	// 100 % and skips the canary.
	for _, app := range apps {
		if _, err := deploy(app); err != nil {
			return runResult{}, err
		}
	}
	cs.saves.Store(0)
	cs.events.Store(0)

	var (
		wg      sync.WaitGroup
		errOnce sync.Once
		runErr  error
		last    atomic.Value
	)
	start := time.Now()
	for i, app := range apps {
		n := pipelines / concurrency
		if i < pipelines%concurrency {
			n++
		}
		wg.Go(func() {
			for range n {
				id, err := deploy(app)
				if err != nil {
					errOnce.Do(func() { runErr = err })
					return
				}
				last.Store(id)
			}
		})
	}
	wg.Wait()
	res := runResult{took: time.Since(start), transitions: cs.saves.Load(), events: cs.events.Load()}
	if runErr != nil {
		return res, runErr
	}
	id, _ := last.Load().(string)
	if res.sample, err = db.GetPipeline(ctx, store.DefaultTenant, id); err != nil {
		return res, err
	}
	if res.sample.Status != pipeline.StatusSucceeded {
		return res, fmt.Errorf("pipeline %s ended %s: %s", id, res.sample.Status, res.sample.State.Message)
	}
	return res, nil
}

// countingStore counts the runner's saves (one per transition) and their
// events, and tells each application's deployer when its pipeline ended.
type countingStore struct {
	store.Store
	saves, events atomic.Int64
	done          map[string]chan string // by application; read-only while running
}

func (s *countingStore) SavePipeline(ctx context.Context, p *store.Pipeline, events []store.Event) error {
	if err := s.Store.SavePipeline(ctx, p, events); err != nil {
		return err
	}
	s.saves.Add(1)
	s.events.Add(int64(len(events)))
	if p.Status.Terminal() {
		s.done[p.Application] <- p.ID
	}
	return nil
}

// instantExecutor succeeds at every command at once, achieving the weight
// asked. It does no cluster work at all: what remains is Sortie's own path.
type instantExecutor struct{}

func (instantExecutor) Execute(_ context.Context, job runner.Job) pipeline.CommandResult {
	w := job.Command.Weight
	if job.Command.Kind != pipeline.CmdSetWeight {
		w = 100
	}
	return pipeline.CommandResult{CommandID: job.Command.ID, Success: true, AchievedWeight: w, Message: "done"}
}

func (instantExecutor) HasAccount(_, _ string) bool { return true }

// storeRate saves copies of sample, each with eventsPerSave events, from
// concurrency goroutines on their own pipelines, total times in all.
func storeRate(ctx context.Context, path string, sample *store.Pipeline, total int64, concurrency, eventsPerSave int) (float64, error) {
	db, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		return 0, err
	}
	defer db.Close()
	data, err := json.Marshal(pipeline.Change{Target: "prod", Step: "canary/3", From: pipeline.StatusQueued, To: pipeline.StatusRunning})
	if err != nil {
		return 0, err
	}
	ps := make([]*store.Pipeline, concurrency)
	for i := range ps {
		p := *sample
		p.ID = fmt.Sprintf("store-%d", i)
		p.Application = p.ID
		p.Version = 0
		if err := db.CreatePipeline(ctx, &p, nil, nil); err != nil {
			return 0, err
		}
		ps[i] = &p
	}
	var (
		wg      sync.WaitGroup
		errOnce sync.Once
		saveErr error
	)
	start := time.Now()
	for i, p := range ps {
		n := total / int64(concurrency)
		if int64(i) < total%int64(concurrency) {
			n++
		}
		wg.Go(func() {
			for k := range n {
				events := make([]store.Event, eventsPerSave)
				for j := range events {
					events[j] = store.Event{Tenant: p.Tenant, Pipeline: p.ID, At: time.Now(), Type: "status", Data: data}
				}
				p.State.Message = fmt.Sprint("save ", k)
				if err := db.SavePipeline(ctx, p, events); err != nil {
					errOnce.Do(func() { saveErr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	return float64(total) / time.Since(start).Seconds(), saveErr
}

// engineRate runs pipelines of spec through pipeline.Transition in memory,
// every command answered at once.
func engineRate(spec pipeline.Spec, pipelines int) (float64, error) {
	now := time.Now()
	transitions := 0
	start := time.Now()
	for i := range pipelines {
		s, err := pipeline.New(fmt.Sprint("engine-", i), spec, now)
		if err != nil {
			return 0, err
		}
		s, _, _, err = pipeline.Transition(s, pipeline.Start{By: benchUser}, now)
		if err != nil {
			return 0, err
		}
		transitions++
		for !s.Status.Terminal() {
			if len(s.Outstanding) == 0 {
				return 0, fmt.Errorf("engine pipeline %s stuck %s", s.ID, s.Status)
			}
			c := s.Outstanding[0]
			w := c.Weight
			if c.Kind != pipeline.CmdSetWeight {
				w = 100
			}
			now = now.Add(time.Millisecond)
			s, _, _, err = pipeline.Transition(s, pipeline.CommandResult{CommandID: c.ID, Success: true, AchievedWeight: w}, now)
			if err != nil {
				return 0, err
			}
			transitions++
		}
	}
	return float64(transitions) / time.Since(start).Seconds(), nil
}
