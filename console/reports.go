package console

import (
	"cmp"
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"github.com/sortie-cd/sortie/analysis"
	"github.com/sortie-cd/sortie/progress"
	"github.com/sortie-cd/sortie/store"
)

// The executors' progress reports of a target, read from its pipeline's
// event log: analysis judgments (progress.EventJudgment), webhook calls
// (progress.EventWebhook, secrets already masked by the gate executor) and the
// Kubernetes objects each command wrote (progress.EventApplied).

// JudgmentRow is one run of one query of an analysis step.
type JudgmentRow struct {
	At        time.Time
	Run, Runs int
	// Mean: the row is the query's mean over all runs, which decides
	// the analysis unless abortOnFailedJudgment.
	Mean                   bool
	Query, Provider        string
	Sent                   string
	Value, Lower, Upper    string
	Verdict, Message       string
	WindowStart, WindowEnd time.Time
}

// WebhookCall is one call of a webhook step, as it was sent (masked).
type WebhookCall struct {
	At      time.Time
	Webhook string
	Request string
}

// ObjectRow is one Kubernetes object a target's commands wrote, with the
// steps that wrote it.
type ObjectRow struct {
	Kind, Namespace, Name string
	Steps                 []string
	Last                  time.Time
}

// targetReports are a target's reports, judgments and calls by step id.
type targetReports struct {
	judgments map[string][]JudgmentRow
	calls     map[string][]WebhookCall
	objects   []ObjectRow
}

func reportsOf(target string, evs []store.Event) targetReports {
	var tr targetReports
	objects := map[string]*ObjectRow{}
	for _, ev := range evs {
		switch ev.Type {
		case progress.EventJudgment:
			var j progress.JudgmentEvent
			if json.Unmarshal(ev.Data, &j) != nil || j.Target != target {
				continue
			}
			if tr.judgments == nil {
				tr.judgments = map[string][]JudgmentRow{}
			}
			tr.judgments[j.Step] = append(tr.judgments[j.Step], judgmentRow(ev.At, j.Judgment))
		case progress.EventWebhook:
			var wc progress.WebhookEvent
			if json.Unmarshal(ev.Data, &wc) != nil || wc.Target != target {
				continue
			}
			if tr.calls == nil {
				tr.calls = map[string][]WebhookCall{}
			}
			tr.calls[wc.Step] = append(tr.calls[wc.Step], WebhookCall{At: ev.At, Webhook: wc.Webhook, Request: wc.Request})
		case progress.EventApplied:
			var a progress.AppliedEvent
			if json.Unmarshal(ev.Data, &a) != nil || a.Target != target {
				continue
			}
			for _, o := range a.Objects {
				key := o.String()
				row := objects[key]
				if row == nil {
					row = &ObjectRow{Kind: o.Kind, Namespace: o.Namespace, Name: o.Name}
					objects[key] = row
				}
				if !slices.Contains(row.Steps, a.Step) {
					row.Steps = append(row.Steps, a.Step)
				}
				row.Last = ev.At
			}
		}
	}
	for _, row := range objects {
		tr.objects = append(tr.objects, *row)
	}
	slices.SortFunc(tr.objects, func(a, b ObjectRow) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return tr
}

func judgmentRow(at time.Time, j analysis.Judgment) JudgmentRow {
	return JudgmentRow{
		At: at, Run: j.Run, Runs: j.Runs, Mean: j.Mean, Query: j.Query, Provider: j.Provider, Sent: j.Sent,
		Value: number(j.Value), Lower: number(j.LowerLimit), Upper: number(j.UpperLimit),
		Verdict: j.Verdict, Message: j.Message, WindowStart: j.Start, WindowEnd: j.End,
	}
}

// number shows a value or limit; "–" when there is none.
func number(v *float64) string {
	if v == nil {
		return "–"
	}
	return strconv.FormatFloat(*v, 'g', 6, 64)
}
