package cli

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/sortie-cd/sortie/progress"
	"github.com/sortie-cd/sortie/store"
)

// judgmentsByStep gathers a pipeline's judgment events by target and step
// ("target step"), in the order they were made.
func judgmentsByStep(evs []store.Event) map[string][]progress.JudgmentEvent {
	out := map[string][]progress.JudgmentEvent{}
	for _, ev := range evs {
		if ev.Type != progress.EventJudgment {
			continue
		}
		var j progress.JudgmentEvent
		if json.Unmarshal(ev.Data, &j) == nil {
			out[j.Target+" "+j.Step] = append(out[j.Target+" "+j.Step], j)
		}
	}
	return out
}

// judgmentText is one judgment in a line: judgmentVerdict and the query as
// sent.
func judgmentText(j progress.JudgmentEvent) string {
	if j.Mean {
		return judgmentVerdict(j) // the mean of runs shown above, sent nowhere
	}
	return fmt.Sprintf("%s; sent to %s: %s", judgmentVerdict(j), firstOf(j.Provider, "?"), oneLine(j.Sent, 300))
}

// judgmentVerdict is run n/N, the query's value against its limits and the
// verdict (with why, when it could not judge).
func judgmentVerdict(j progress.JudgmentEvent) string {
	value := "no value"
	if j.Value != nil {
		value = strconv.FormatFloat(*j.Value, 'g', -1, 64)
	}
	verdict := j.Verdict
	if j.Verdict != "pass" && j.Verdict != "fail" && j.Message != "" {
		verdict += " (" + j.Message + ")"
	}
	if j.Attempts > 1 {
		verdict += fmt.Sprintf(" after %d attempts", j.Attempts)
	}
	run := fmt.Sprintf("run %d/%d", j.Run, j.Runs)
	if j.Mean {
		run = fmt.Sprintf("mean of %d runs", j.Runs)
	}
	return fmt.Sprintf("%s %s = %s (%s): %s", run, j.Query, value, limitsText(j.LowerLimit, j.UpperLimit), verdict)
}

func limitsText(lower, upper *float64) string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	switch {
	case lower != nil && upper != nil:
		return "limits " + f(*lower) + ".." + f(*upper)
	case lower != nil:
		return "lower limit " + f(*lower)
	case upper != nil:
		return "upper limit " + f(*upper)
	}
	return "no limits"
}

// webhookText is a webhook call as recorded (secret values already masked
// by the server) in one line: the request line, the headers, the body.
func webhookText(w progress.WebhookEvent) string {
	head, body, _ := strings.Cut(w.Request, "\n\n")
	lines := strings.Split(strings.TrimSpace(head), "\n")
	s := "webhook " + w.Webhook + " called: " + lines[0]
	if len(lines) > 1 {
		s += " [" + strings.Join(lines[1:], "; ") + "]"
	}
	if body = oneLine(body, 200); body != "" {
		s += " body " + body
	}
	return s
}

// oneLine folds s's whitespace into single spaces and cuts it after max
// runes.
func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > max {
		return string(r[:max]) + "…"
	}
	return s
}
