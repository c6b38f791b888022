package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"text/tabwriter"
	"time"
)

func main() {
	var o options
	flag.IntVar(&o.rollouts, "rollouts", 7, "canary rollouts to time (and as many kubectl rollouts), after one untimed warm-up each")
	flag.IntVar(&o.pipelines, "pipelines", 400, "pipelines the engine benchmark runs")
	flag.IntVar(&o.concurrency, "concurrency", 8, "pipelines the engine benchmark runs at once")
	flag.StringVar(&o.only, "only", "", "run only this part: rollout or engine")
	flag.Parse()
	if err := run(context.Background(), os.Stdout, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type options struct {
	rollouts    int
	pipelines   int
	concurrency int
	only        string
}

func run(ctx context.Context, out io.Writer, o options) error {
	switch o.only {
	case "", "rollout", "engine":
	default:
		return fmt.Errorf("-only %q: want rollout or engine", o.only)
	}
	if o.only != "engine" {
		if err := benchRollout(ctx, out, o.rollouts); err != nil {
			return fmt.Errorf("rollout: %w", err)
		}
	}
	if o.only != "rollout" {
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
