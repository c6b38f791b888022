package api

import (
	"context"

	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/plan"
	"github.com/sortie-cd/sortie/store"
)

// Principal is the authenticated caller, as package auth verified it.
type Principal = auth.Principal

// Deployments is what the API needs of the deployment runner. Every call is
// scoped to a tenant (the caller's); an id of another tenant must answer
// store.ErrNotFound, exactly as an id that does not exist.
type Deployments interface {
	// Start validates and starts (or queues) a pipeline. Errors:
	// deployfile.Problems for an invalid file (400, one entry per problem),
	// a *pipeline.Error with CodeConflict when another deployment is in
	// flight (409; its message names that pipeline, or return an *Error
	// with Pipeline set), an *Error with Status 422 for a well-formed
	// request that cannot run (an unknown account, say).
	Start(ctx context.Context, p Principal, req StartRequest) (StartResult, error)
	// Redeploy starts a new pipeline from pipelineID's stored source.
	Redeploy(ctx context.Context, p Principal, pipelineID string, req RedeployRequest) (StartResult, error)
	// Restore starts a pipeline that puts the version pipelineID deployed
	// back (or, with req.Previous, the version before it), straight,
	// without strategy or gates (409 when there is none to go back to).
	Restore(ctx context.Context, p Principal, pipelineID string, req RestoreRequest) (StartResult, error)
	Get(ctx context.Context, tenant, id string) (*store.Pipeline, error)
	List(ctx context.Context, tenant string, f store.Filter) ([]*store.Pipeline, error)
	// Act applies an action (pipeline.Approve, Skip, Rollback, Cancel,
	// WebhookCallback) and returns the pipeline after it.
	Act(ctx context.Context, p Principal, id string, ev pipeline.Event) (*store.Pipeline, error)
	// Events returns the stored events of a pipeline with Seq > after.
	Events(ctx context.Context, tenant, id string, after int64) ([]store.Event, error)
	// Subscribe delivers every event of the tenant (all pipelines)
	// appended from now on, until ctx ends. It may drop events for a slow
	// reader (the API fills gaps in a pipeline's Seq from Events) and closes
	// the channel when it cannot go on (the stream then ends, and the
	// client reconnects with Last-Event-ID).
	Subscribe(ctx context.Context, tenant string) <-chan store.Event
}

// StartRequest is the body of POST /api/v1/pipelines: a deployment file
// and what it refers to, as the CLI sends them.
type StartRequest = plan.StartRequest

// StartResult answers a start or a redeploy.
type StartResult = plan.StartResult

// RestoreRequest is the body of POST /api/v1/pipelines/{id}/restore: go
// back to the version pipeline id deployed on Targets (when empty, every
// target it deployed), or, with Previous, to the version its one target
// ran before it (a rollback after success). Reason is required.
type RestoreRequest struct {
	Targets  []string `json:"targets,omitempty"`
	Previous bool     `json:"previous,omitempty"`
	Reason   string   `json:"reason"`
}

// RedeployRequest is the body of POST /api/v1/pipelines/{id}/redeploy.
type RedeployRequest struct {
	// Targets, when not empty, names the only targets that run.
	Targets []string `json:"targets,omitempty"`
}
