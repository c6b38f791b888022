package progress

import (
	"time"
)

// Event types executors append to a pipeline's log.
const (
	// EventApplied: a command wrote objects to the cluster; data is an
	// AppliedEvent.
	EventApplied = "applied"
	// EventWebhook: a webhook step sent its request; data is a
	// WebhookEvent.
	EventWebhook = "webhook"
	// EventJudgment: one query of one judgment run was judged; data is a
	// JudgmentEvent.
	EventJudgment = "judgment"
	// EventRetry: a command failed transiently and runs again after a
	// wait; data is a RetryEvent.
	EventRetry = "retry"
)

// RetryEvent is the data of an EventRetry event.
type RetryEvent struct {
	Target  string `json:"target"`
	Step    string `json:"step"`
	Command string `json:"command"`
	// Attempt is the number of the run about to start (2 for the first
	// retry).
	Attempt int `json:"attempt"`
	// Reason is the failed run's message; Message the line to show:
	// "retrying <step>: <reason> (attempt <n>)".
	Reason  string `json:"reason"`
	Message string `json:"message"`
	// RetryAt is when the next run starts.
	RetryAt time.Time `json:"retryAt"`
}

// Object names one Kubernetes object a command wrote (never its content).
type Object struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

func (o Object) String() string {
	if o.Namespace == "" {
		return o.Kind + "/" + o.Name
	}
	return o.Kind + "/" + o.Namespace + "/" + o.Name
}

// AppliedEvent is the data of an EventApplied event: the objects one
// command wrote.
type AppliedEvent struct {
	Target  string   `json:"target"`
	Step    string   `json:"step"`
	Command string   `json:"command"`
	Objects []Object `json:"objects"`
}

// WebhookEvent is the data of an EventWebhook event.
type WebhookEvent struct {
	Target  string `json:"target"`
	Step    string `json:"step"`
	Command string `json:"command"`
	Webhook string `json:"webhook"`
	// Request is the rendered request, secret values masked.
	Request string `json:"request"`
}

// Judgment verdicts.
const (
	Pass         = "pass"
	Fail         = "fail"
	Inconclusive = "inconclusive"
)

// Judgment is one query of one judgment run: what was sent, what came
// back and what it means.
type Judgment struct {
	Run        int       `json:"run"`
	Runs       int       `json:"runs"`
	Query      string    `json:"query"`
	Provider   string    `json:"provider"`
	Sent       string    `json:"sent"`
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	Value      *float64  `json:"value,omitempty"`
	LowerLimit *float64  `json:"lowerLimit,omitempty"`
	UpperLimit *float64  `json:"upperLimit,omitempty"`
	Verdict    string    `json:"verdict"`
	// Mean marks the judgment of a query's mean over all runs, made after
	// the last run; it decides the analysis unless abortOnFailedJudgment.
	// Value is the mean, Start and End span the whole analysis.
	Mean     bool   `json:"mean,omitempty"`
	Message  string `json:"message,omitempty"`
	Attempts int    `json:"attempts,omitempty"`
}

// JudgmentEvent is the data of an EventJudgment event.
type JudgmentEvent struct {
	Target  string `json:"target"`
	Step    string `json:"step"`
	Command string `json:"command"`
	Judgment
}
