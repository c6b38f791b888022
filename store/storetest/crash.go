package storetest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
)

// The kill test: a child process saves crashWriters pipelines over and over,
// one goroutine each, and reports every save that returned; the parent kills
// it with SIGKILL mid-stream, reopens the database and checks that every
// reported save is there, whole, and that nothing else is half there.
const (
	crashWriters = 4
	// crashKillAfter is how many reported saves the parent waits for.
	crashKillAfter = 200
	// crashMaxVersion stops a child whose parent never kills it.
	crashMaxVersion = 20000
)

func crashID(i int) string { return fmt.Sprintf("crash-%d", i) }

// crashPipeline is the pipeline crashID as version v left it: every field
// follows from the two.
func crashPipeline(id string, v int64) *store.Pipeline {
	p := CanaryPipeline(store.DefaultTenant, id, "app-"+id, t0)
	p.Version = v
	p.State.Message = fmt.Sprintf("version %d", v)
	for i := range v - 1 {
		p.State.History = append(p.State.History, pipeline.Record{At: t0.Add(time.Duration(i) * time.Second), Action: "tick", By: "crash", Message: strings.Repeat("x", int(i%7))})
	}
	for _, t := range p.State.Targets[:min(int(v-1), len(p.State.Targets))] {
		p.Deployed = append(p.Deployed, t.Name)
	}
	p.Wake = t0.Add(time.Duration(v) * time.Minute)
	p.UpdatedAt = t0.Add(time.Duration(v) * time.Second)
	return p
}

func crashEvent(v int64) store.Event {
	return store.Event{At: t0.Add(time.Duration(v)), Type: fmt.Sprintf("v%d", v), Data: json.RawMessage(fmt.Sprintf(`{"version":%d}`, v))}
}

// CrashWriter is the child's half of the kill test (see Kill): on s, a
// store on an empty database, it creates crash pipelines and saves them
// over and over, writing "committed <id> <version>" on w after each write
// returned, until ctx ends or the parent kills the process.
func CrashWriter(ctx context.Context, s store.Store, w io.Writer) error {
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs = make([]error, crashWriters)
	)
	report := func(id string, v int64) error {
		mu.Lock()
		defer mu.Unlock()
		_, err := fmt.Fprintf(w, "committed %s %d\n", id, v)
		return err
	}
	for i := range crashWriters {
		id := crashID(i)
		wg.Go(func() {
			p := crashPipeline(id, 1)
			if err := s.CreatePipeline(ctx, p, nil, []store.Event{crashEvent(1)}); err != nil {
				errs[i] = err
				return
			}
			if errs[i] = report(id, 1); errs[i] != nil {
				return
			}
			for v := int64(2); v <= crashMaxVersion && ctx.Err() == nil; v++ {
				p := crashPipeline(id, v)
				p.Version = v - 1
				if err := s.SavePipeline(ctx, p, []store.Event{crashEvent(v)}); err != nil {
					errs[i] = err
					return
				}
				if errs[i] = report(id, v); errs[i] != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Kill is the parent's half of the kill test. child must run CrashWriter,
// with its output on the child's stdout, on a new database that reopen
// opens. Kill starts it, kills it with SIGKILL once it reported enough
// saves, then checks through reopen that every reported save is there and
// whole: the pipeline at the reported version or the one after (a save in
// flight when the process died may or may not have committed, but never
// partly), its State, Wake and Deployed those of that version, and its
// event log exactly one event per version.
func Kill(t *testing.T, child *exec.Cmd, reopen func(t *testing.T) store.Store) {
	t.Helper()
	var stderr bytes.Buffer
	child.Stderr = &stderr
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	reported := map[string]int64{}
	total := 0
	killed := false
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[0] != "committed" {
			continue // the test binary's own output
		}
		v, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			t.Fatalf("child wrote %q", sc.Text())
		}
		if v <= reported[f[1]] {
			t.Errorf("child reported %s version %d after %d", f[1], v, reported[f[1]])
		}
		reported[f[1]] = v
		total++
		if total == crashKillAfter && !killed {
			if err := child.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = child.Wait()
	if !killed {
		t.Fatalf("the child ended by itself after %d saves (%v):\n%s", total, err, stderr.String())
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Exited() {
		t.Fatalf("the child was not killed: %v\n%s", err, stderr.String())
	}
	t.Logf("killed the child after %d reported saves: %v", total, reported)

	s := reopen(t)
	ctx := t.Context()
	for i := range crashWriters {
		id := crashID(i)
		r := reported[id]
		got, err := s.GetPipeline(ctx, store.DefaultTenant, id)
		if errors.Is(err, store.ErrNotFound) && r == 0 {
			continue
		}
		if err != nil {
			t.Fatalf("pipeline %s, reported at version %d: %v", id, r, err)
		}
		if got.Version != r && got.Version != r+1 {
			t.Errorf("pipeline %s at version %d, reported %d", id, got.Version, r)
		}
		want := crashPipeline(id, got.Version)
		samePipeline(t, got, want)
		es, err := s.Events(ctx, store.DefaultTenant, id, 0)
		if err != nil {
			t.Fatal(err)
		}
		var wantEvents []store.Event
		for v := int64(1); v <= got.Version; v++ {
			e := crashEvent(v)
			e.Tenant, e.Pipeline, e.Seq = store.DefaultTenant, id, v
			wantEvents = append(wantEvents, e)
		}
		if diff := cmp.Diff(wantEvents, es, opts); diff != "" {
			t.Errorf("events of %s at version %d (-want +got):\n%s", id, got.Version, diff)
		}
		for j, target := range want.State.Targets {
			deployed, err := s.DeployedBefore(ctx, store.DefaultTenant, want.Application, target.Name)
			if err != nil {
				t.Fatal(err)
			}
			if wantDeployed := j < len(want.Deployed); deployed != wantDeployed {
				t.Errorf("%s at version %d: DeployedBefore(%s) = %v, want %v", id, got.Version, target.Name, deployed, wantDeployed)
			}
		}
		// The restarted server goes on from where it found the pipeline.
		next := crashPipeline(id, got.Version+1)
		next.Version = got.Version
		if err := s.SavePipeline(ctx, next, []store.Event{crashEvent(got.Version + 1)}); err != nil {
			t.Errorf("saving %s after the restart: %v", id, err)
		}
	}
}
