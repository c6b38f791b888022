package api

import (
	"time"

	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
)

// PipelineView is GET /api/v1/pipelines/{id}: the pipeline's graph as the
// engine keeps it, with where each target deploys and what it waits for.
// The submitted source is not in it (GET .../source has it).
type PipelineView struct {
	ID          string          `json:"id"`
	Application string          `json:"application"`
	Status      pipeline.Status `json:"status"`
	Message     string          `json:"message,omitempty"`
	Cancelling  bool            `json:"cancelling,omitempty"`
	StartedBy   string          `json:"startedBy"`
	CreatedAt   time.Time       `json:"createdAt"`
	UpdatedAt   time.Time       `json:"updatedAt"`
	StartedAt   time.Time       `json:"startedAt,omitzero"`
	EndedAt     time.Time       `json:"endedAt,omitzero"`
	// Version increases with every saved transition.
	Version int64 `json:"version"`
	// Deployed names the targets where this pipeline's version was put in
	// place.
	Deployed []string     `json:"deployed,omitempty"`
	Targets  []TargetView `json:"targets"`
	// History lists every accepted action: who, when, what.
	History []pipeline.Record `json:"history,omitempty"`
	// Spec is what runs: strategies, gates (with the roles an approval
	// requires), timeouts.
	Spec pipeline.Spec `json:"spec"`
	// Commit is where the deployment comes from, when its start said.
	Commit *store.Commit `json:"commit,omitempty"`
	// Freezes hold targets of this pipeline; BreakGlass is the reason of a
	// break-glass start. The windows that apply are in Spec.Windows.
	Freezes    []pipeline.Freeze `json:"freezes,omitempty"`
	BreakGlass string            `json:"breakGlass,omitempty"`
}

// TargetView is one target's state with its place in the graph.
type TargetView struct {
	pipeline.TargetState
	Account   string   `json:"account"`
	Namespace string   `json:"namespace"`
	DependsOn []string `json:"dependsOn,omitempty"`
	Strategy  string   `json:"strategy,omitempty"`
}

func viewOf(sp *store.Pipeline) PipelineView {
	st := &sp.State
	v := PipelineView{
		ID:          sp.ID,
		Application: sp.Application,
		Status:      st.Status,
		Message:     st.Message,
		Cancelling:  st.Cancelling,
		StartedBy:   sp.StartedBy,
		CreatedAt:   sp.CreatedAt,
		UpdatedAt:   sp.UpdatedAt,
		StartedAt:   st.StartedAt,
		EndedAt:     st.EndedAt,
		Version:     sp.Version,
		Deployed:    sp.Deployed,
		Commit:      sp.Source.Commit,
		Targets:     make([]TargetView, 0, len(st.Targets)),
		History:     st.History,
		Spec:        st.Spec,
		Freezes:     st.Freezes,
		BreakGlass:  st.BreakGlass,
	}
	if v.Status == "" {
		v.Status = sp.Status
	}
	for _, t := range st.Targets {
		tv := TargetView{TargetState: t}
		if ts := st.Spec.Target(t.Name); ts != nil {
			tv.Account, tv.Namespace, tv.DependsOn, tv.Strategy = ts.Account, ts.Namespace, ts.DependsOn, ts.Strategy.Name
		}
		v.Targets = append(v.Targets, tv)
	}
	return v
}

// PipelineSummary is one pipeline in GET /api/v1/pipelines.
type PipelineSummary struct {
	ID          string          `json:"id"`
	Application string          `json:"application"`
	Status      pipeline.Status `json:"status"`
	Message     string          `json:"message,omitempty"`
	StartedBy   string          `json:"startedBy"`
	CreatedAt   time.Time       `json:"createdAt"`
	UpdatedAt   time.Time       `json:"updatedAt"`
	StartedAt   time.Time       `json:"startedAt,omitzero"`
	EndedAt     time.Time       `json:"endedAt,omitzero"`
	Targets     []TargetSummary `json:"targets"`
}

// TargetSummary is a target's name and status.
type TargetSummary struct {
	Name   string          `json:"name"`
	Status pipeline.Status `json:"status"`
}

func summaryOf(sp *store.Pipeline) PipelineSummary {
	st := &sp.State
	v := PipelineSummary{
		ID:          sp.ID,
		Application: sp.Application,
		Status:      sp.Status,
		Message:     st.Message,
		StartedBy:   sp.StartedBy,
		CreatedAt:   sp.CreatedAt,
		UpdatedAt:   sp.UpdatedAt,
		StartedAt:   st.StartedAt,
		EndedAt:     st.EndedAt,
		Targets:     make([]TargetSummary, 0, len(st.Targets)),
	}
	for _, t := range st.Targets {
		v.Targets = append(v.Targets, TargetSummary{Name: t.Name, Status: t.Status})
	}
	return v
}

// SourceView is GET /api/v1/pipelines/{id}/source: the deployment as it was
// submitted.
type SourceView struct {
	Pipeline  string            `json:"pipeline"`
	FileName  string            `json:"fileName"`
	File      string            `json:"file"`
	Manifests map[string]string `json:"manifests"`
	Context   map[string]string `json:"context,omitempty"`
}

// EventList is the JSON body of GET /api/v1/pipelines/{id}/events.
type EventList struct {
	Events []store.Event `json:"events"`
}

// CredentialView is a credential as the API shows it: never its secret's
// hash.
type CredentialView struct {
	ClientID  string    `json:"clientId"`
	Name      string    `json:"name"`
	Roles     []string  `json:"roles"`
	CreatedAt time.Time `json:"createdAt"`
}

// NewCredential answers POST /api/v1/credentials: the only time the secret
// is shown.
type NewCredential struct {
	CredentialView
	ClientSecret string `json:"clientSecret"`
}

// CredentialList is the body of GET /api/v1/credentials.
type CredentialList struct {
	Credentials []CredentialView `json:"credentials"`
}

// CreateCredentialRequest is the body of POST /api/v1/credentials.
type CreateCredentialRequest struct {
	Name  string   `json:"name"`
	Roles []string `json:"roles"`
}
