package pipeline

import "encoding/json"

// CommandKind names one of the few things the engine asks adapters to do.
type CommandKind string

// Command kinds. Every deploying kind (SetWeight, DeployPreview, Finalize)
// first applies the target's manifests by server-side apply: kinds other than
// Deployments directly, so there is no separate "apply objects" command.
const (
	// CmdSetWeight (canary) runs the new version beside the old one at
	// Weight percent. Success is reported once the new pods are Ready, with
	// the weight actually achieved.
	CmdSetWeight CommandKind = "setWeight"
	// CmdDeployPreview (blue/green) runs the new version at full size behind
	// the preview service; success once Ready.
	CmdDeployPreview CommandKind = "deployPreview"
	// CmdRedirectActive (blue/green) points the active service at the new
	// version.
	CmdRedirectActive CommandKind = "redirectActive"
	// CmdFinalize makes the user's Deployment carry the new version at 100 %
	// and removes what the strategy left (canary workload, old blue/green
	// version); success once Ready. A first deployment is only this.
	CmdFinalize CommandKind = "finalize"
	// CmdRollback restores what ran before this pipeline and removes the new
	// version. It supersedes every earlier command of its target.
	CmdRollback CommandKind = "rollback"
	// CmdCallWebhook calls the webhook Webhook with Context; success means
	// the call was answered. Unless the step disables callbacks, the step
	// then waits for a WebhookCallback carrying this command's ID.
	CmdCallWebhook CommandKind = "callWebhook"
	// CmdRunAnalysis runs an analysis with Params; success means it passed.
	CmdRunAnalysis CommandKind = "runAnalysis"
	// CmdExposeServices exposes services of the new version per Params.
	CmdExposeServices CommandKind = "exposeServices"
	// CmdDropWarm removes the previous version that the pipeline's target
	// kept warm (KeepPrevious), once its time is over. The runner sends it
	// on its own after the pipeline ended; the engine never emits it.
	CmdDropWarm CommandKind = "dropWarm"
)

// Command is work for an adapter. ID is deterministic
// (pipeline/target/step) and unique within a pipeline, so executing a command
// twice, for instance when resuming after a restart from State.Outstanding,
// is harmless. Commands of one target must be executed in the order they
// were emitted.
type Command struct {
	ID        string      `json:"id"`
	Kind      CommandKind `json:"kind"`
	Pipeline  string      `json:"pipeline"`
	Target    string      `json:"target"`
	Step      string      `json:"step"`
	Account   string      `json:"account"`
	Namespace string      `json:"namespace"`
	// Weight is the canary weight of CmdSetWeight.
	Weight int `json:"weight,omitempty"`
	// Webhook and Context are the webhook name and its context of
	// CmdCallWebhook.
	Webhook string            `json:"webhook,omitempty"`
	Context map[string]string `json:"context,omitempty"`
	// Params are passed through from the spec for CmdRunAnalysis and
	// CmdExposeServices.
	Params json.RawMessage `json:"params,omitempty"`
}
