package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

func main() {
	var o options
	flag.IntVar(&o.rollouts, "rollouts", 7, "canary rollouts to time each way (server + agent, in-process, kubectl), after one untimed warm-up each")
	flag.IntVar(&o.rollbacks, "rollbacks", 5, "rollbacks to time (and as many kubectl rollout undo)")
	flag.IntVar(&o.workloads, "workloads", 50, "Deployments in the deployment the agent's memory is measured through")
	flag.IntVar(&o.pipelines, "pipelines", 400, "pipelines the engine benchmark runs")
	flag.IntVar(&o.concurrency, "concurrency", 8, "pipelines the engine benchmark runs at once")
	flag.StringVar(&o.only, "only", "", "run only these parts, comma-separated: rollout, rollback, memory, engine")
	flag.Parse()
	if err := run(context.Background(), os.Stdout, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type options struct {
	rollouts    int
	rollbacks   int
	workloads   int
	pipelines   int
	concurrency int
	only        string
}

// parts are the benchmark's parts, in the order they run; all but engine
// share one cluster.
var parts = []string{"rollout", "rollback", "memory", "engine"}

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
	if o.wants("rollout") || o.wants("rollback") || o.wants("memory") {
		if err := benchCluster(ctx, out, o); err != nil {
			return err
		}
	}
	if o.wants("engine") {
		if err := benchEngine(ctx, out, o.pipelines, o.concurrency); err != nil {
			return fmt.Errorf("engine: %w", err)
		}
	}
	return nil
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
