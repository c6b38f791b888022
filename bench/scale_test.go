package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestScaleSmall runs the scale benchmark with a handful of pipelines and
// agents, so that its code does not rot: real `sortie server` processes
// (one on SQLite, three replicas on a real PostgreSQL), simulated agents
// over the real gRPC protocol (no cluster: they answer every command at
// once, as the benchmark's do). It checks that every pipeline succeeded
// with its command after its cause, not how fast.
func TestScaleSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts sortie server processes and PostgreSQL")
	}
	o := scaleOptions{pipelines: 12, agents: 3, concurrency: 4, replicas: 3, pause: time.Second, leaseTTL: 2 * time.Second, takeover: 3}
	bin, err := buildSortie(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	lite, err := scaleSQLite(t.Context(), bin, t.TempDir(), o)
	if err != nil {
		t.Fatalf("SQLite: %v", err)
	}
	one, err := scalePostgres(t.Context(), bin, t.TempDir(), o, 1)
	if err != nil {
		t.Fatalf("PostgreSQL, one server: %v", err)
	}
	pg, err := scalePostgres(t.Context(), bin, t.TempDir(), o, o.replicas)
	if err != nil {
		t.Fatalf("PostgreSQL: %v", err)
	}
	for _, side := range []*scaleSide{lite, one, pg} {
		// scalePipeline refuses a pipeline that did not succeed or whose
		// command came before its cause: what is left to check is that
		// every one was measured.
		if len(side.approval) != o.pipelines/2 || len(side.timer) != o.pipelines/2 {
			t.Errorf("%s: %d approvals and %d timers measured, want %d each", side.name, len(side.approval), len(side.timer), o.pipelines/2)
		}
		for _, d := range append(side.approval, side.timer...) {
			if d < 0 || d > time.Minute {
				t.Errorf("%s: cause → command %v", side.name, d)
			}
		}
		for _, s := range side.servers {
			if s.hwm <= 0 {
				t.Errorf("%s: %s has no peak RSS", side.name, s.name)
			}
		}
	}
	if len(lite.servers) != 1 || len(one.servers) != 1 || len(pg.servers) != o.replicas || pg.database == nil || one.database == nil {
		t.Errorf("measured %d SQLite and %d + %d PostgreSQL servers (database: %v), want 1, 1 and %d", len(lite.servers), len(one.servers), len(pg.servers), pg.database != nil, o.replicas)
	}
	if len(pg.takeover) != o.takeover || len(one.takeover) != 0 {
		t.Errorf("takeover measured for %d pipelines of the replicas (want %d) and %d of the one server (want 0)", len(pg.takeover), o.takeover, len(one.takeover))
	}
	for _, d := range pg.takeover {
		// measureTakeover refuses a claim by the killed replica; a claim
		// before its lease ran out would be a lease not respected.
		if d < o.leaseTTL/2 {
			t.Errorf("a pipeline of the killed replica was claimed %v after the kill, before its lease (TTL %v) could have run out", d, o.leaseTTL)
		}
	}
	var out bytes.Buffer
	printScale(&out, o, lite, one, pg)
	t.Log(out.String())
	for _, want := range []string{"approval → command, p99", "timer → command, p50", "approvals per second", "pipelines completed per second", "SIMULATED agents", "PG×3 / PG×1", "PG×3 / SQLite", "goal, 12 in flight on one SQLite server", "takeover after kill -9", "goal, takeover within lease TTL + 1 s"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the printed table has no %q:\n%s", want, out.String())
		}
	}
}
