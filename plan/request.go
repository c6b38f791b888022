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
}

// StartResult says what became of a start.
type StartResult struct {
	PipelineID string          `json:"pipelineId"`
	Status     pipeline.Status `json:"status"`
	Warnings   []string        `json:"warnings,omitempty"`
	Queued     bool            `json:"queued"`
}
