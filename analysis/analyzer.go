package analysis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/sortie-cd/sortie/deployfile"
	"github.com/sortie-cd/sortie/progress"
	"github.com/sortie-cd/sortie/store"
)

// Verdicts of a judgment and of an analysis.
const (
	Pass         = progress.Pass
	Fail         = progress.Fail
	Inconclusive = progress.Inconclusive
)

// Lookback methods.
const (
	Growing = "GROWING"
	Sliding = "SLIDING"
)

// Judgment is one query of one judgment run: what was sent, what came
// back and what it means. It is what the pipeline's log records.
type Judgment = progress.Judgment

// Input is one analysis step to run.
type Input struct {
	Tenant string
	Step   deployfile.AnalysisStep
	// Queries are the file's analysis.queries the step names, in its order.
	Queries []*deployfile.Query
	// DefaultProvider is analysis.defaultMetricProviderName.
	DefaultProvider string
	// Armory are the armory.* values besides the window's (application,
	// deployment id, environment, account, namespace); Context the file's
	// context with the step's over it.
	Armory, Context map[string]string
}

// Outcome is an analysis's result: Pass, Fail or Inconclusive, with a
// message for people.
type Outcome struct {
	Verdict string
	Message string
}

// Providers is where a tenant's providers are looked up; store.Store has it.
type Providers interface {
	GetMetricProvider(ctx context.Context, tenant, name string) (*store.MetricProvider, error)
}

// Analyzer runs analysis steps.
type Analyzer struct {
	Providers Providers
	Secrets   SecretResolver
	// Direct and Relay: see Env.
	Direct Doer
	Relay  Relay
	// RetryEvery is the wait between attempts at an unreachable provider;
	// zero means a tenth of the interval (at least 100 ms).
	RetryEvery time.Duration
	// Now: nil means time.Now. Waits use real timers.
	Now func() time.Time
	// Log: nil discards.
	Log *slog.Logger
}

func (a *Analyzer) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// sleepUntil waits for t with a timer; false when ctx ended first.
func (a *Analyzer) sleepUntil(ctx context.Context, t time.Time) bool {
	d := t.Sub(a.now())
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// Run runs the analysis: a judgment run at every interval's end, each
// judgment passed to report as soon as it is made. As Armory specified it,
// each query is judged by the mean of its values over all runs, compared
// with its limits after the last run (one more judgment per query, with
// Mean set): a run outside the limits does not end the analysis. With the
// step's abortOnFailedJudgment, the first run outside the limits ends it as
// Fail instead. Either way a query that cannot be rendered fails at once,
// a failure wins over any no-data, NaN or unreachable judgment (which make
// the outcome Inconclusive), and else it is Pass. When ctx ends it returns what it knows so far as
// Inconclusive (the caller has stopped listening anyway).
func (a *Analyzer) Run(ctx context.Context, in Input, report func(context.Context, Judgment)) Outcome {
	step := in.Step
	interval := step.Every
	if interval <= 0 {
		interval = time.Duration(step.Interval) * step.Units.Duration()
	}
	if interval <= 0 || step.NumberOfJudgmentRuns < 1 || len(in.Queries) == 0 {
		return Outcome{Fail, "the analysis needs a positive interval, at least one judgment run and one query"}
	}
	providers := map[string]Provider{}
	provider := func(q *deployfile.Query) (string, Provider, error) {
		name := q.MetricProviderName
		if name == "" {
			name = step.MetricProviderName
		}
		if name == "" {
			name = in.DefaultProvider
		}
		if name == "" {
			return "", nil, fmt.Errorf("query %s names no metric provider, and analysis.defaultMetricProviderName is not set", q.Name)
		}
		if p, ok := providers[name]; ok {
			return name, p, nil
		}
		sp, err := a.Providers.GetMetricProvider(ctx, in.Tenant, name)
		if errors.Is(err, store.ErrNotFound) {
			return name, nil, fmt.Errorf("metric provider %s is not configured; add it with `sortie providers add`", name)
		}
		if err != nil {
			return name, nil, err
		}
		c, err := FromStored(sp)
		if err != nil {
			return name, nil, err
		}
		p, err := Open(ctx, c, Env{Tenant: in.Tenant, Secrets: a.Secrets, Direct: a.Direct, Relay: a.Relay})
		if err != nil {
			return name, nil, err
		}
		providers[name] = p
		return name, p, nil
	}
	// Configuration problems fail before the first wait, not an interval later.
	for _, q := range in.Queries {
		if _, _, err := provider(q); err != nil {
			return Outcome{Fail, err.Error()}
		}
	}

	start := a.now()
	runs := step.NumberOfJudgmentRuns
	inconclusive := ""
	// values are each query's values so far, for the mean judged after the
	// last run (Armory's rule unless abortOnFailedJudgment).
	values := make([][]float64, len(in.Queries))
	for run := 1; run <= runs; run++ {
		end := start.Add(time.Duration(run) * interval)
		if !a.sleepUntil(ctx, end) {
			return Outcome{Inconclusive, "analysis stopped before it ended"}
		}
		from := start
		if strings.EqualFold(step.LookbackMethod, Sliding) {
			from = end.Add(-interval)
		}
		for i, q := range in.Queries {
			name, p, _ := provider(q) // cached above
			j := a.judge(ctx, in, q, name, p, from, end, interval, end.Add(interval))
			j.Run, j.Runs = run, runs
			if j.Value != nil {
				values[i] = append(values[i], *j.Value)
				if j.Verdict == Fail && !step.AbortOnFailedJudgment && runs > 1 {
					j.Message += fmt.Sprintf("; the mean of the %d runs decides", runs)
				}
			}
			if report != nil {
				report(ctx, j)
			}
			switch {
			// A query that cannot be rendered fails whatever the mode: no
			// later run can render it either.
			case j.Verdict == Fail && (step.AbortOnFailedJudgment || j.Value == nil):
				return Outcome{Fail, fmt.Sprintf("run %d of %d: %s", run, runs, j.Message)}
			case j.Verdict == Inconclusive && inconclusive == "":
				inconclusive = fmt.Sprintf("run %d of %d: %s", run, runs, j.Message)
			}
		}
	}
	if !step.AbortOnFailedJudgment {
		failed := ""
		for i, q := range in.Queries {
			if len(values[i]) == 0 {
				continue // every run was inconclusive, and said so
			}
			j := meanJudgment(q, values[i], runs)
			name, _, _ := provider(q)
			j.Provider, j.Start, j.End = name, start, start.Add(time.Duration(runs)*interval)
			if report != nil {
				report(ctx, j)
			}
			if j.Verdict == Fail && failed == "" {
				failed = j.Message
			}
		}
		if failed != "" {
			return Outcome{Fail, failed}
		}
	}
	if inconclusive != "" {
		return Outcome{Inconclusive, inconclusive}
	}
	if step.AbortOnFailedJudgment {
		return Outcome{Pass, fmt.Sprintf("%d judgment runs of %d queries passed", runs, len(in.Queries))}
	}
	return Outcome{Pass, fmt.Sprintf("the mean of %d judgment runs of each of %d queries is within its limits", runs, len(in.Queries))}
}

// meanJudgment judges the mean of a query's values over the runs that
// had one: the judgment that decides an analysis without
// abortOnFailedJudgment.
func meanJudgment(q *deployfile.Query, vs []float64, runs int) Judgment {
	sum := 0.0
	for _, v := range vs {
		sum += v
	}
	mean := sum / float64(len(vs))
	j := Judgment{Run: runs, Runs: runs, Mean: true, Query: q.Name, Value: &mean, LowerLimit: q.LowerLimit, UpperLimit: q.UpperLimit}
	j.Verdict, j.Message = verdict(q, mean)
	of := fmt.Sprintf("the mean of %d runs", len(vs))
	if len(vs) < runs {
		of = fmt.Sprintf("the mean of the %d of %d runs with a value", len(vs), runs)
	}
	j.Message = strings.Replace(j.Message, "query "+q.Name+" =", "query "+q.Name+": "+of+" =", 1)
	return j
}

// judge runs one query for the window [from, end], retrying an unreachable
// provider until retryUntil.
func (a *Analyzer) judge(ctx context.Context, in Input, q *deployfile.Query, name string, p Provider, from, end time.Time, interval time.Duration, retryUntil time.Time) Judgment {
	j := Judgment{Query: q.Name, Provider: name, Start: from, End: end, LowerLimit: q.LowerLimit, UpperLimit: q.UpperLimit}
	armory := maps.Clone(in.Armory)
	if armory == nil {
		armory = map[string]string{}
	}
	maps.Copy(armory, WindowVariables(from, end, interval))
	text, err := deployfile.Render(q.QueryTemplate.Text, deployfile.Variables{
		Armory:  armory,
		Context: in.Context,
		Secret:  func(string) (string, bool) { return "", false },
	})
	if err != nil {
		j.Verdict, j.Message = Fail, fmt.Sprintf("query %s: %v", q.Name, err)
		return j
	}
	j.Sent = text
	wait := a.RetryEvery
	if wait <= 0 {
		wait = max(interval/10, 100*time.Millisecond)
	}
	var v float64
	for {
		j.Attempts++
		v, err = p.Query(ctx, Query{Text: text, Start: from, End: end})
		var unreachable *UnreachableError
		if !errors.As(err, &unreachable) || !a.now().Add(wait).Before(retryUntil) {
			break
		}
		a.log().Info("metric provider unreachable, retrying", "provider", name, "query", q.Name, "err", err)
		if !a.sleepUntil(ctx, a.now().Add(wait)) {
			break
		}
	}
	switch {
	case errors.Is(err, ErrNoData):
		j.Verdict, j.Message = Inconclusive, fmt.Sprintf("query %s returned no data", q.Name)
	case err != nil:
		j.Verdict, j.Message = Inconclusive, fmt.Sprintf("query %s: %v", q.Name, err)
	case math.IsNaN(v):
		j.Verdict, j.Message = Inconclusive, fmt.Sprintf("query %s returned NaN", q.Name)
	default:
		j.Value = &v
		j.Verdict, j.Message = verdict(q, v)
	}
	return j
}

func (a *Analyzer) log() *slog.Logger {
	if a.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.Log
}

func verdict(q *deployfile.Query, v float64) (string, string) {
	val := strconv.FormatFloat(v, 'g', -1, 64)
	switch {
	case q.LowerLimit != nil && v < *q.LowerLimit:
		return Fail, fmt.Sprintf("query %s = %s is below its lower limit %g", q.Name, val, *q.LowerLimit)
	case q.UpperLimit != nil && v > *q.UpperLimit:
		return Fail, fmt.Sprintf("query %s = %s is above its upper limit %g", q.Name, val, *q.UpperLimit)
	}
	return Pass, fmt.Sprintf("query %s = %s is within its limits", q.Name, val)
}

// WindowVariables are the armory.* window values of the window [from, end]
// of an analysis with this interval. promQlStepInterval is the window's
// length as a PromQL duration, for range selectors covering the window.
func WindowVariables(from, end time.Time, interval time.Duration) map[string]string {
	i64 := func(n int64) string { return strconv.FormatInt(n, 10) }
	window := max(end.Sub(from).Round(time.Second), time.Second)
	return map[string]string{
		"startTimeIso8601":      from.UTC().Format(time.RFC3339),
		"endTimeIso8601":        end.UTC().Format(time.RFC3339),
		"startTimeEpochSeconds": i64(from.Unix()),
		"startTimeEpochMillis":  i64(from.UnixMilli()),
		"endTimeEpochSeconds":   i64(end.Unix()),
		"endTimeEpochMillis":    i64(end.UnixMilli()),
		"intervalSeconds":       i64(int64(interval / time.Second)),
		"intervalMillis":        i64(interval.Milliseconds()),
		"promQlStepInterval":    i64(int64(window/time.Second)) + "s",
	}
}
