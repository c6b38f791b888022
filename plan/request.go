package plan

import (
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
)

// StartRequest is a deployment as the CLI submits it: the body of
// POST /api/v1/pipelines.
type StartRequest struct {
	FileName string `json:"fileName"`
	File     string `json:"file"`
	// Manifests maps manifest paths, relative to the deployment file's
	// folder, to their text; a manifest named by URL is keyed by its URL
	// and holds the text the CLI fetched.
	Manifests map[string]string `json:"manifests,omitempty"`
	// Context adds to (and overrides) the file's context.
	Context map[string]string `json:"context,omitempty"`
	// Targets, when not empty, are the only targets that run.
	Targets []string `json:"targets,omitempty"`
	// Application overrides the file's application name.
	Application string `json:"application,omitempty"`
	// Commit, when not nil, is recorded with the pipeline.
	Commit *store.Commit `json:"commit,omitempty"`
	// BreakGlass starts the deployment outside its windows and through the
	// freezes in force; it needs Reason, and a principal holding
	// organization-admin, tenant-admin or break-glass. It is audited.
	BreakGlass bool   `json:"breakGlass,omitempty"`
	Reason     string `json:"reason,omitempty"`
}

// StartResult says what became of a start.
type StartResult struct {
	PipelineID string          `json:"pipelineId"`
	Status     pipeline.Status `json:"status"`
	Warnings   []string        `json:"warnings,omitempty"`
	Queued     bool            `json:"queued"`
	// Held says, per target, why it waits at once: a closed deploy
	// window, a freeze ("target: why").
	Held []string `json:"held,omitempty"`
}
