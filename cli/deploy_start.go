package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/client"
	"github.com/sortie-cd/sortie/deployfile"
	"github.com/sortie-cd/sortie/pipeline"
)

// DeployStartOptions are the inputs of `sortie deploy start`.
type DeployStartOptions struct {
	Conn        connOptions
	File        string
	Redeploy    string
	Application string
	Targets     []string
	Context     []string
	Watch       bool
	Output      string
	// Account is Armory's --account: it overrode the file's accounts only
	// for a --file URL, which neither CLI fetches; a local file keeps its own.
	Account string
	// WithSCM and SCMFile are Armory's --with-scm and --with-scm-file: the
	// commit the deployment comes from (see scm.go).
	WithSCM bool
	SCMFile string
	// ManifestCAFile holds PEM certificates trusted, besides the system's,
	// for manifests named by https URL.
	ManifestCAFile string
	// BreakGlass starts outside the deploy windows and through the freezes
	// in force, with Reason (audited).
	BreakGlass bool
	Reason     string
}

func newDeployStartCmd(ios IOStreams) *cobra.Command {
	opts := DeployStartOptions{}
	cmd := &cobra.Command{
		Use:   "start -f FILE | -i PIPELINE_ID",
		Short: "Start a deployment, or redeploy an earlier one",
		Long: strings.TrimSpace(`
Start a deployment of a deployment file: the file is validated here first
(every problem with file:line:col, exit 1), then sent with the text of the
manifests it names (a manifest named by an https URL is fetched here, and
its text sent and stored with the deployment, so a redeploy is identical).
Prints the deployment's id, its link and any warnings.

-i PIPELINE_ID redeploys an earlier deployment's stored file and manifests.

Exits 0 when the deployment was accepted (with --watch: when it succeeded),
3 when another deployment of the application is in flight (HTTP 409; see
deploymentConfig.ifDeploymentInProgress), 1 on any other error.

In GitHub Actions (GITHUB_OUTPUT set) the outputs DEPLOYMENT_ID, LINK and
RUN_RESULT are written, and a summary to GITHUB_STEP_SUMMARY.`),
		Example: strings.TrimSpace(`
  sortie deploy start -f deploy.yml
  sortie deploy start -f deploy.yml -t staging --add-context image=web:v2,ticket=OPS-12 --watch
  sortie deploy start -i 01JD3X5R8Q4W2E0M6K9T7N5B3C`),
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDeployStart(cmd.Context(), ios, opts) },
	}
	f := cmd.Flags()
	f.StringVarP(&opts.File, "file", "f", "", "the deployment file")
	f.StringVarP(&opts.Redeploy, "pipeline-id", "i", "", "redeploy this earlier deployment's file and manifests")
	f.StringVarP(&opts.Application, "application", "n", "", "the application name (overrides the file's; the file may then lack one)")
	f.StringArrayVarP(&opts.Targets, "target", "t", nil, "deploy only this target (repeatable); replaces the file's targetFilters")
	f.StringSliceVar(&opts.Context, "add-context", nil, "context values k=v,... added to (and overriding) the file's context, contextOverrides and step contexts")
	f.BoolVarP(&opts.Watch, "watch", "w", false, "follow the deployment until it ends; exit 0 only if it succeeded")
	f.StringVar(&opts.Account, "account", "", "Armory's override of the accounts of a --file URL; a local file keeps its own")
	f.BoolVar(&opts.WithSCM, "with-scm", false, "record the commit, branch, repository and actor from the CI environment (GITHUB_*)")
	f.StringVar(&opts.SCMFile, "with-scm-file", "", "record the commit, branch, repository and actor from this JSON file")
	f.StringVar(&opts.ManifestCAFile, "manifest-ca-file", envOr("SORTIE_MANIFEST_CA_FILE", ""), "PEM file of CAs trusted, besides the system's, for manifests named by https URL (SORTIE_MANIFEST_CA_FILE)")
	f.BoolVar(&opts.BreakGlass, "break-glass", false, "start outside the deploy windows and through the freezes in force (needs --reason and the role tenant-admin, organization-admin or break-glass; audited)")
	f.StringVar(&opts.Reason, "reason", "", "why glass is broken (with --break-glass)")
	opts.Conn.bind(cmd)
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

// startOutput is what `deploy start -o json` prints.
type startOutput struct {
	PipelineID string `json:"pipelineId"`
	// DeploymentID is PipelineID under Armory's name, so that scripts
	// reading .deploymentId keep working.
	DeploymentID string          `json:"deploymentId"`
	Application  string          `json:"application,omitempty"`
	Link         string          `json:"link"`
	Status       pipeline.Status `json:"status"`
	Queued       bool            `json:"queued"`
	Warnings     []string        `json:"warnings"`
	// Held are the targets that wait at once (a deploy window, a freeze).
	Held []string `json:"held,omitempty"`
	// Pipeline is the final pipeline, with --watch.
	Pipeline *api.PipelineView `json:"pipeline,omitempty"`
}

func runDeployStart(ctx context.Context, ios IOStreams, opts DeployStartOptions) error {
	if err := checkOutput(opts.Output); err != nil {
		return err
	}
	switch {
	case opts.File != "" && opts.Redeploy != "":
		return usageErrorf("give either -f FILE or -i PIPELINE_ID, not both")
	case opts.File == "" && opts.Redeploy == "":
		return usageErrorf("give the deployment file with -f FILE (or -i PIPELINE_ID to redeploy)")
	case opts.Redeploy != "" && (opts.Application != "" || len(opts.Context) > 0):
		return usageErrorf("-n and --add-context do not apply to a redeploy (-i): it reuses the stored deployment as it was")
	case opts.BreakGlass && strings.TrimSpace(opts.Reason) == "":
		return usageErrorf("--break-glass needs --reason: say why the windows and freezes are overridden")
	case opts.Reason != "" && !opts.BreakGlass:
		return usageErrorf("--reason goes with --break-glass")
	case opts.BreakGlass && opts.Redeploy != "":
		return usageErrorf("--break-glass applies to a start with -f FILE, not to a redeploy (-i)")
	}
	addCtx, err := parseContext(opts.Context)
	if err != nil {
		return err
	}
	scm, err := readSCM(opts)
	if err != nil {
		return err
	}
	if opts.Account != "" {
		fmt.Fprintf(ios.ErrOut, "note: --account overrides accounts only of a --file URL (as in Armory's CLI); %s keeps its own accounts\n", firstOf(opts.File, "the stored deployment"))
	}
	var (
		req     api.StartRequest
		fileApp string
	)
	if opts.File != "" {
		fetcher, err := newManifestFetcher(ctx, opts.ManifestCAFile)
		if err != nil {
			return err
		}
		o := deployfile.Options{RequireManifests: true, Context: addCtx, Application: opts.Application, Fetch: fetcher.fetch}
		if req, fileApp, err = buildStartRequest(ios, opts.File, o); err != nil {
			return err
		}
		req.Application, req.Targets, req.Context = opts.Application, opts.Targets, addCtx
		req.BreakGlass, req.Reason = opts.BreakGlass, opts.Reason
		if scm != nil {
			req.Commit = scm.commit()
		}
	}
	env := readEnvironment()
	c, err := newAPIClient(ios, opts.Conn)
	if err != nil {
		return err
	}
	var res api.StartResult
	if opts.Redeploy != "" {
		res, err = c.Redeploy(ctx, opts.Redeploy, api.RedeployRequest{Targets: opts.Targets})
		err = aboutDeployment(opts.Redeploy, err)
	} else {
		res, err = c.StartPipeline(ctx, req)
	}
	app := firstOf(opts.Application, fileApp)
	if err != nil {
		if gerr := writeGitHub(env, githubOutputs{RunResult: "REJECTED", Application: app, Message: err.Error()}); gerr != nil {
			fmt.Fprintf(ios.ErrOut, "warning: %v\n", gerr)
		}
		if client.StatusOf(err) == 409 && exitCode(err) == ExitInProgress {
			fmt.Fprintf(ios.ErrOut, "error: %v\nAnother deployment of this application is in flight: wait for it to end, cancel it with 'sortie deploy cancel ID', or set deploymentConfig.ifDeploymentInProgress.strategy: enqueueOne.\n", err)
			return &ExitError{Code: ExitInProgress, Err: err, Silent: true}
		}
		return apiFailure(ios, err)
	}
	if scm != nil && opts.Output == "text" {
		fmt.Fprintf(ios.ErrOut, "source: %s\n", scm.summary())
	}
	out := startOutput{PipelineID: res.PipelineID, DeploymentID: res.PipelineID, Application: app, Link: consoleLink(c.Server(), res.PipelineID), Status: res.Status, Queued: res.Queued, Warnings: res.Warnings, Held: res.Held}
	if out.Warnings == nil {
		out.Warnings = []string{}
	}
	switch {
	case opts.Output == "text" && globals.Armory:
		writeArmoryStart(ios.Out, out)
	case opts.Output == "text":
		writeStartText(ios.Out, out)
	}
	var outcome error
	if opts.Watch && globals.Armory {
		var live io.Writer
		if opts.Output == "text" {
			live = ios.Out
		}
		final, err := armoryWatch(ctx, c, out, live)
		if err != nil {
			return err
		}
		if final == nil {
			return writeGitHubOrWarn(ios, env, out)
		}
		out.Status, out.Pipeline = final.Status, final
		outcome = finalOutcome(ios, final)
	} else if opts.Watch {
		live := ios.Out
		if opts.Output != "text" {
			live = ios.ErrOut
		}
		final, err := watchPipeline(ctx, ios, c, res.PipelineID, live)
		if err != nil {
			return err
		}
		if final == nil { // interrupted: the deployment goes on
			return writeGitHubOrWarn(ios, env, out)
		}
		out.Status, out.Pipeline = final.Status, final
		outcome = finalOutcome(ios, final)
	}
	if opts.Output != "text" {
		var doc any = out
		if globals.Armory {
			doc = armoryStartOutput{DeploymentID: out.PipelineID, Status: string(out.Status)}
		}
		if err := writeData(ios.Out, opts.Output, doc, nil); err != nil {
			return err
		}
	}
	if err := writeGitHubOrWarn(ios, env, out); err != nil {
		return err
	}
	return outcome
}

func writeGitHubOrWarn(ios IOStreams, env environment, out startOutput) error {
	msg := ""
	if out.Pipeline != nil {
		msg = out.Pipeline.Message
	}
	if err := writeGitHub(env, githubOutputs{DeploymentID: out.PipelineID, Link: out.Link, RunResult: string(out.Status), Application: out.Application, Message: msg}); err != nil {
		fmt.Fprintf(ios.ErrOut, "warning: %v\n", err)
	}
	return nil
}

func writeStartText(w io.Writer, out startOutput) {
	verb := "started"
	if out.Queued {
		verb = "queued behind the deployment in flight"
	}
	fmt.Fprintf(w, "Deployment %s %s (%s).\n", out.PipelineID, verb, out.Status)
	fmt.Fprintf(w, "  %s\n", out.Link)
	for _, h := range out.Held {
		fmt.Fprintf(w, "waits: %s\n", h)
	}
	for _, wn := range out.Warnings {
		fmt.Fprintf(w, "warning: %s\n", wn)
	}
}

// buildStartRequest validates the file locally (problems with positions,
// exit 1; manifests named by URL fetched through o.Fetch, a failure being
// one of the problems) and gathers the manifests' text as the server
// expects it.
func buildStartRequest(ios IOStreams, file string, o deployfile.Options) (api.StartRequest, string, error) {
	res, err := loadDeployFile(file, o)
	if err != nil {
		return api.StartRequest{}, "", err
	}
	if err := reportProblems(ios, res); err != nil {
		return api.StartRequest{}, "", err
	}
	text, err := os.ReadFile(file)
	if err != nil {
		return api.StartRequest{}, "", fmt.Errorf("read the deployment file: %w", err)
	}
	wd, err := os.Getwd()
	if err != nil {
		return api.StartRequest{}, "", fmt.Errorf("find the working directory: %w", err)
	}
	manifests, err := collectManifests(res.File, wd)
	if err != nil {
		return api.StartRequest{}, "", err
	}
	req := api.StartRequest{FileName: submittedName(file), File: string(text), Manifests: manifests}
	return req, res.File.Application, nil
}

// parseContext reads --add-context values k=v.
func parseContext(items []string) (map[string]string, error) {
	if len(items) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, it := range items {
		k, v, ok := strings.Cut(it, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, usageErrorf("--add-context wants key=value pairs, got %q", it)
		}
		out[k] = v
	}
	return out, nil
}
