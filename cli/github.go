package cli

import (
	"fmt"
	"os"
	"strings"
)

// githubOutputs are what `deploy start` reports to GitHub Actions.
type githubOutputs struct {
	DeploymentID string
	Link         string
	// RunResult is the deployment's status: the final one with --watch,
	// else the one it was accepted in (RUNNING, QUEUED), or REJECTED when
	// the server refused it.
	RunResult   string
	Application string
	Message     string
}

// writeGitHub appends the outputs to $GITHUB_OUTPUT and a summary to
// $GITHUB_STEP_SUMMARY, when GitHub Actions set them.
func writeGitHub(env environment, o githubOutputs) error {
	if env.GitHubOutput != "" {
		var b strings.Builder
		for _, kv := range [][2]string{{"DEPLOYMENT_ID", o.DeploymentID}, {"LINK", o.Link}, {"RUN_RESULT", o.RunResult}} {
			// Values are ids, URLs and statuses: no newline can break the
			// name=value format.
			fmt.Fprintf(&b, "%s=%s\n", kv[0], strings.ReplaceAll(kv[1], "\n", " "))
		}
		if err := appendFile(env.GitHubOutput, b.String()); err != nil {
			return fmt.Errorf("write GITHUB_OUTPUT: %w", err)
		}
	}
	if env.GitHubStepSummary != "" {
		var b strings.Builder
		b.WriteString("### Sortie deployment\n\n| | |\n|---|---|\n")
		if o.Application != "" {
			fmt.Fprintf(&b, "| Application | `%s` |\n", o.Application)
		}
		if o.DeploymentID != "" {
			fmt.Fprintf(&b, "| Deployment | [%s](%s) |\n", o.DeploymentID, o.Link)
		}
		fmt.Fprintf(&b, "| Result | **%s** |\n", o.RunResult)
		if o.Message != "" {
			fmt.Fprintf(&b, "\n%s\n", strings.ReplaceAll(o.Message, "\n", " "))
		}
		b.WriteString("\n")
		if err := appendFile(env.GitHubStepSummary, b.String()); err != nil {
			return fmt.Errorf("write GITHUB_STEP_SUMMARY: %w", err)
		}
	}
	return nil
}

func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
