package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/client"
)

// addOutputFlag binds -o/--output (text, json or yaml).
func addOutputFlag(cmd *cobra.Command, dst *string) {
	cmd.Flags().StringVarP(dst, "output", "o", "text", "output format: text, json or yaml")
}

func checkOutput(format string) error {
	switch format {
	case "text", "json", "yaml":
		return nil
	}
	return usageErrorf("--output must be text, json or yaml, not %q", format)
}

// writeData prints v as JSON or YAML, or calls text for the text format.
// YAML is the JSON document converted, so both have the same keys.
func writeData(w io.Writer, format string, v any, text func(io.Writer) error) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(v)
	case "yaml":
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		var doc any
		if err := yaml.Unmarshal(b, &doc); err != nil {
			return err
		}
		enc := yaml.NewEncoder(w)
		enc.SetIndent(2)
		if err := enc.Encode(doc); err != nil {
			return err
		}
		return enc.Close()
	}
	return text(w)
}

// apiFailure reports an API error with every entry on its own line
// (file:line:col first when it has a position) and returns the error that
// carries its exit code, already printed.
func apiFailure(ios IOStreams, err error) error {
	var ae *client.Error
	if !errors.As(err, &ae) || len(ae.Errors) < 2 && (len(ae.Errors) == 0 || ae.Errors[0].File == "") {
		return err
	}
	for _, en := range ae.Errors {
		if pos := client.Position(en); pos != "" {
			fmt.Fprintf(ios.ErrOut, "%s: %s\n", pos, en.Message)
		} else {
			fmt.Fprintf(ios.ErrOut, "%s\n", en.Message)
		}
	}
	fmt.Fprintf(ios.ErrOut, "the server refused the request (%d, error id %s)\n", ae.Status, ae.ErrorID)
	return &ExitError{Code: exitCode(err), Err: err, Silent: true}
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

// consoleLink is the console's page of a pipeline.
func consoleLink(server, id string) string {
	return strings.TrimRight(server, "/") + "/pipelines/" + id
}

// targetsLine is "name STATUS, ..." of a summary's targets.
func targetsLine(ts []api.TargetSummary) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = t.Name + " " + string(t.Status)
	}
	return strings.Join(parts, ", ")
}

// aboutDeployment rewrites a 404 on a deployment id into a message that
// names it; other errors pass through.
func aboutDeployment(id string, err error) error {
	var ae *client.Error
	// The engine's own 404s (no such target or step) say what is missing;
	// an unknown pipeline is a bare "not found".
	if errors.As(err, &ae) && ae.Status == 404 && len(ae.Errors) == 1 && ae.Errors[0].Message == "not found" {
		return &ExitError{Code: ExitFailure, Err: fmt.Errorf("no deployment %s in your tenant ('sortie deploy list' shows them): %w", id, err)}
	}
	return err
}
