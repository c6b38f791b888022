package dora

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
)

// LeadTimeFrom says where lead time starts. Sortie knows a deployment's
// commit (deploy start --with-scm) but not the commit's time, so lead time
// runs from the pipeline's creation (the deployment submitted) to the
// target's success.
const LeadTimeFrom = "pipeline created (the commit's time is not known to Sortie)"

// Report is the delivery figures of a tenant over [From, To).
type Report struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Days is the period's length in days, the base of PerDay.
	Days         float64 `json:"days"`
	LeadTimeFrom string  `json:"leadTimeFrom"`
	// Rows are per application and target, sorted; Total sums them.
	Rows  []Row `json:"rows"`
	Total Row   `json:"total"`
	// Truncated is set when the period held more than MaxPipelines
	// pipelines: the figures count the newest ones only.
	Truncated bool `json:"truncated,omitempty"`
}

// Row is the figures of one application on one target (both empty in
// Report.Total).
type Row struct {
	Application string `json:"application,omitempty"`
	Target      string `json:"target,omitempty"`
	// Deployments are the target's deployments that succeeded, Failures
	// those that failed or were rolled back (cancelled ones are neither).
	Deployments int `json:"deployments"`
	Failures    int `json:"failures"`
	// PerDay is Deployments over the period's days: deployment frequency.
	PerDay float64 `json:"perDay"`
	// ChangeFailureRate is Failures over Deployments+Failures, 0 when
	// there were none.
	ChangeFailureRate float64 `json:"changeFailureRate"`
	// LeadTimeSeconds is the median, over the successes, of the time from
	// the pipeline's creation to the target's success.
	LeadTimeSeconds float64 `json:"leadTimeSeconds"`
	// TimeToRestoreSeconds is the median, over the failures followed by a
	// success on the same application and target, of the time from the
	// failed deployment's end to that success's end. Unrestored counts the
	// failures not followed by a success yet.
	TimeToRestoreSeconds float64 `json:"timeToRestoreSeconds"`
	Restored             int     `json:"restored"`
	Unrestored           int     `json:"unrestored"`

	leads, restores []time.Duration
}

// Lister lists pipelines of one tenant, newest first, as
// store.Store.ListPipelines does for a tenant.
type Lister func(ctx context.Context, f store.Filter) ([]*store.Pipeline, error)

// MaxPipelines bounds what one report reads.
const MaxPipelines = 20000

const page = 500

// Load reads the pipelines created in [from, to), of application when not
// empty, and those created after, up to now (a failure's restoration may
// come after to), and computes their report. A deployment belongs to the
// period its pipeline was created in.
func Load(ctx context.Context, list Lister, application string, from, to, now time.Time) (Report, error) {
	if !from.Before(to) {
		return Report{}, fmt.Errorf("dora: the period's start %s is not before its end %s", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	var all []*store.Pipeline
	seen := map[string]bool{}
	before := now.Add(time.Nanosecond)
	if to.After(now) {
		before = to
	}
	truncated := false
	for {
		ps, err := list(ctx, store.Filter{Application: application, CreatedAfter: from.Add(-time.Nanosecond), CreatedBefore: before, Limit: page})
		if err != nil {
			return Report{}, fmt.Errorf("dora: list pipelines: %w", err)
		}
		fresh := 0
		for _, p := range ps {
			if !seen[p.ID] {
				seen[p.ID] = true
				all = append(all, p)
				fresh++
			}
		}
		if len(ps) < page || fresh == 0 {
			break
		}
		if len(all) >= MaxPipelines {
			truncated = true
			break
		}
		// The next page ends at the oldest seen, included: pipelines
		// created at the same instant are not lost, and seen drops the
		// repeats.
		before = ps[len(ps)-1].CreatedAt.Add(time.Nanosecond)
	}
	r := Compute(all, from, to)
	r.Truncated = truncated
	return r, nil
}

// deployment is one target of one pipeline that ended.
type deployment struct {
	app, target string
	created     time.Time
	ended       time.Time
	ok          bool
}

// Compute is the report of ps (any order) over [from, to).
func Compute(ps []*store.Pipeline, from, to time.Time) Report {
	r := Report{From: from, To: to, Days: to.Sub(from).Hours() / 24, LeadTimeFrom: LeadTimeFrom}
	var ds []deployment
	for _, p := range ps {
		for _, t := range p.State.Targets {
			if t.StartedAt.IsZero() || t.EndedAt.IsZero() {
				continue // never started, or not ended
			}
			switch t.Status {
			case pipeline.StatusSucceeded:
				ds = append(ds, deployment{p.Application, t.Name, p.CreatedAt, t.EndedAt, true})
			case pipeline.StatusFailed, pipeline.StatusRolledBack:
				ds = append(ds, deployment{p.Application, t.Name, p.CreatedAt, t.EndedAt, false})
			}
		}
	}
	slices.SortFunc(ds, func(a, b deployment) int { return a.ended.Compare(b.ended) })
	rows := map[[2]string]*Row{}
	for i, d := range ds {
		if d.created.Before(from) || !d.created.Before(to) {
			continue
		}
		k := [2]string{d.app, d.target}
		row := rows[k]
		if row == nil {
			row = &Row{Application: d.app, Target: d.target}
			rows[k] = row
		}
		if d.ok {
			row.Deployments++
			row.leads = append(row.leads, d.ended.Sub(d.created))
			continue
		}
		row.Failures++
		next := slices.IndexFunc(ds[i+1:], func(n deployment) bool { return n.ok && n.app == d.app && n.target == d.target })
		if next < 0 {
			row.Unrestored++
			continue
		}
		row.Restored++
		row.restores = append(row.restores, ds[i+1+next].ended.Sub(d.ended))
	}
	for _, row := range rows {
		r.Total.add(row)
		row.finish(r.Days)
		r.Rows = append(r.Rows, *row)
	}
	r.Total.finish(r.Days)
	slices.SortFunc(r.Rows, func(a, b Row) int {
		return strings.Compare(a.Application+"\x00"+a.Target, b.Application+"\x00"+b.Target)
	})
	if r.Rows == nil {
		r.Rows = []Row{}
	}
	return r
}

func (t *Row) add(row *Row) {
	t.Deployments += row.Deployments
	t.Failures += row.Failures
	t.Restored += row.Restored
	t.Unrestored += row.Unrestored
	t.leads = append(t.leads, row.leads...)
	t.restores = append(t.restores, row.restores...)
}

func (row *Row) finish(days float64) {
	if days > 0 {
		row.PerDay = float64(row.Deployments) / days
	}
	if n := row.Deployments + row.Failures; n > 0 {
		row.ChangeFailureRate = float64(row.Failures) / float64(n)
	}
	row.LeadTimeSeconds = median(row.leads).Seconds()
	row.TimeToRestoreSeconds = median(row.restores).Seconds()
	row.leads, row.restores = nil, nil
}

// median is the middle value (the mean of the two middle ones), 0 for none.
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

// MaxDays bounds a period.
const MaxDays = 366

// Period reads a period as the API's and the console's query give it: since
// and until (RFC 3339 times; until empty means now), or days (a whole
// number of days up to until; default 30). The error is for the user.
func Period(since, until, days string, now time.Time) (from, to time.Time, err error) {
	to = now
	if until != "" {
		if to, err = time.Parse(time.RFC3339, until); err != nil {
			return from, to, fmt.Errorf("until must be an RFC 3339 time such as 2026-01-02T15:04:05Z, not %q", until)
		}
	}
	switch {
	case since != "" && days != "":
		return from, to, fmt.Errorf("give since or days, not both")
	case since != "":
		if from, err = time.Parse(time.RFC3339, since); err != nil {
			return from, to, fmt.Errorf("since must be an RFC 3339 time such as 2026-01-02T15:04:05Z, not %q", since)
		}
	default:
		n := 30
		if days != "" {
			if n, err = strconv.Atoi(days); err != nil || n < 1 || n > MaxDays {
				return from, to, fmt.Errorf("days must be a whole number from 1 to %d, not %q", MaxDays, days)
			}
		}
		from = to.AddDate(0, 0, -n)
	}
	if !from.Before(to) {
		return from, to, fmt.Errorf("the period's start %s is not before its end %s", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	if to.Sub(from) > MaxDays*24*time.Hour {
		return from, to, fmt.Errorf("the period is longer than %d days", MaxDays)
	}
	return from, to, nil
}
