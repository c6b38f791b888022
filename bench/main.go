package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

func main() {
	var o options
	flag.IntVar(&o.rollouts, "rollouts", 7, "canary rollouts to time each way (server + agent, in-process, kubectl), after one untimed warm-up each")
	flag.DurationVar(&o.idle, "rollout-idle", 2*time.Second, "how long the cluster is left idle, once its controllers are done with the last rollout, before each rollout of the quiet-cluster half (the controller manager's client-side limit, 20 requests a second and 30 at once per controller, is whole again after 1.5 s)")
	flag.IntVar(&o.rollbacks, "rollbacks", 5, "rollbacks to time (and as many kubectl rollout undo)")
	flag.IntVar(&o.workloads, "workloads", 50, "Deployments in the deployment the agent's memory is measured through")
	flag.IntVar(&o.pipelines, "pipelines", 400, "pipelines the engine benchmark runs")
	flag.IntVar(&o.concurrency, "concurrency", 8, "pipelines the engine benchmark runs at once")
	flag.IntVar(&o.scale.pipelines, "scale-pipelines", envInt("SORTIE_BENCH_SCALE_PIPELINES", 1000), "pipelines each side of the scale benchmark runs (SORTIE_BENCH_SCALE_PIPELINES; the issue asks up to 10000)")
	flag.IntVar(&o.scale.agents, "scale-agents", 100, "simulated agents of the scale benchmark, one account each")
	flag.IntVar(&o.scale.concurrency, "scale-concurrency", 32, "API calls (starts, approvals) the scale benchmark makes at once; every pipeline is in flight at once")
	flag.IntVar(&o.scale.replicas, "scale-replicas", 3, "servers sharing the PostgreSQL database in the scale benchmark")
	flag.DurationVar(&o.scale.pause, "scale-pause", 0, "the timed pause of half the scale benchmark's pipelines (whole seconds; 0: long enough that every pipeline is started before the first pause ends)")
	flag.IntVar(&o.scale.takeover, "scale-takeover", 30, "pipelines the killed replica holds when the scale benchmark times the takeover (0: no kill)")
	flag.DurationVar(&o.scale.leaseTTL, "scale-lease-ttl", 0, "the replicas' --lease-ttl in the scale benchmark (0: the server's default)")
	flag.StringVar(&o.only, "only", "", "run only these parts, comma-separated: rollout, rollback, memory, engine, scale")
	flag.Parse()
	if err := run(context.Background(), os.Stdout, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type options struct {
	rollouts    int
	idle        time.Duration
	rollbacks   int
	workloads   int
	pipelines   int
	concurrency int
	only        string
	scale       scaleOptions
}

// parts are the benchmark's parts, in the order they run; all but engine
// and scale share one cluster.
var parts = []string{"rollout", "rollback", "memory", "engine", "scale"}

// wants reports whether -only selects part.
func (o options) wants(part string) bool {
	return o.only == "" || slices.Contains(strings.Split(o.only, ","), part)
}

func run(ctx context.Context, out io.Writer, o options) error {
	if o.only != "" {
		for p := range strings.SplitSeq(o.only, ",") {
			if !slices.Contains(parts, p) {
				return fmt.Errorf("-only %q: want a comma-separated list of %s", o.only, strings.Join(parts, ", "))
			}
		}
	}
	if o.rollouts < 1 || o.rollbacks < 1 || o.workloads < 1 {
		return errors.New("-rollouts, -rollbacks and -workloads must be at least 1")
	}
	if o.idle < 0 {
		return errors.New("-rollout-idle must not be negative")
	}
	if o.scale.pause < 0 || o.scale.pause%time.Second != 0 {
		return errors.New("-scale-pause must be whole seconds (0: long enough for every start)")
	}
	cluster := o.wants("rollout") || o.wants("rollback") || o.wants("memory")
	var bin string
	if cluster || o.wants("scale") {
		// One build of ./cmd/sortie for every part that runs it.
		dir, err := os.MkdirTemp("", "sortie-bench-bin-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		fmt.Fprintln(os.Stderr, "bench: building ./cmd/sortie")
		if bin, err = buildSortie(ctx, dir); err != nil {
			return err
		}
	}
	if cluster {
		if err := benchCluster(ctx, out, bin, o); err != nil {
			return err
		}
	}
	if o.wants("engine") {
		if err := benchEngine(ctx, out, o.pipelines, o.concurrency); err != nil {
			return fmt.Errorf("engine: %w", err)
		}
	}
	if o.wants("scale") {
		if err := benchScale(ctx, out, bin, o.scale); err != nil {
			return fmt.Errorf("scale: %w", err)
		}
	}
	return nil
}

// envInt is the integer in environment variable name, or def.
func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return n
	}
	return def
}

// table prints aligned rows.
func table(out io.Writer, rows [][]string) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for _, r := range rows {
		for i, c := range r {
			if i > 0 {
				fmt.Fprint(tw, "\t")
			}
			fmt.Fprint(tw, c)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func mean(ds []time.Duration) time.Duration {
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return sum / time.Duration(len(ds))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }
