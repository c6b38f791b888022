package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sortie-cd/sortie/deployfile"
)

// ValidateOptions are the inputs of `sortie validate`.
type ValidateOptions struct {
	File             string
	Output           string
	RequireManifests bool
	// Application is what deploy start -n would give.
	Application string
}

func newValidateCmd(ios IOStreams) *cobra.Command {
	opts := ValidateOptions{}
	cmd := &cobra.Command{
		Use:   "validate -f FILE",
		Short: "Check a deployment file offline, reporting every problem at once",
		Long: strings.TrimSpace(`
Check a deployment file without a server: unknown keys, wrong types, missing
keys, names that refer to nothing, dependency cycles, weights, pauses,
templates, and the Kubernetes manifests it names. Every problem is reported
with its file, line and column.

Manifest paths are read from the deployment file's folder; a path that only
exists relative to the working directory (as Armory's CLI read them) is used
with a warning. A manifest path that exists nowhere is a warning, or an error
with --require-manifests.

Exits 0 when the file is valid and 1 when it is not.`),
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error { return runValidate(ios, opts) },
	}
	cmd.Flags().StringVarP(&opts.File, "file", "f", "", "the deployment file")
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "text", "output format: text or json")
	cmd.Flags().BoolVar(&opts.RequireManifests, "require-manifests", false, "treat manifest paths that do not exist as errors")
	cmd.Flags().StringVarP(&opts.Application, "application", "n", "", "the application name, as deploy start -n gives it (the file then need not have one)")
	return cmd
}

func runValidate(ios IOStreams, opts ValidateOptions) error {
	if opts.Output != "text" && opts.Output != "json" {
		return usageErrorf("--output must be text or json, not %q", opts.Output)
	}
	res, err := loadDeployFile(opts.File, deployfile.Options{RequireManifests: opts.RequireManifests, Application: opts.Application})
	if err != nil {
		return err
	}
	if opts.Output == "json" {
		out := struct {
			File     string              `json:"file"`
			Valid    bool                `json:"valid"`
			Errors   deployfile.Problems `json:"errors"`
			Warnings deployfile.Problems `json:"warnings"`
			Secrets  []string            `json:"secrets,omitempty"`
		}{File: opts.File, Valid: len(res.Errors) == 0, Errors: nonNil(res.Errors), Warnings: nonNil(res.Warnings)}
		if res.File != nil {
			out.Secrets = res.File.Secrets()
		}
		enc := json.NewEncoder(ios.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
		if !out.Valid {
			return &ExitError{Code: ExitFailure, Silent: true}
		}
		return nil
	}
	if err := reportProblems(ios, res); err != nil {
		return err
	}
	_, err = fmt.Fprintf(ios.Out, "%s is valid: %s\n", opts.File, summary(res.File))
	return err
}

// noArgs rejects positional arguments as a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("%s takes no arguments, got %q", cmd.CommandPath(), args)
	}
	return nil
}

// loadDeployFile loads the file named by -f, resolving manifests from the
// working directory as a fallback.
func loadDeployFile(path string, o deployfile.Options) (*deployfile.Result, error) {
	if path == "" {
		return nil, usageErrorf("give the deployment file with -f FILE")
	}
	wd, err := os.Getwd()
	if err != nil {
		return nil, fmt.Errorf("find the working directory: %w", err)
	}
	o.WorkDir = wd
	return deployfile.Load(path, o), nil
}

// reportProblems prints warnings and errors to ErrOut, one per line as
// file:line:col: message, and fails silently when there are errors.
func reportProblems(ios IOStreams, res *deployfile.Result) error {
	for _, w := range res.Warnings {
		fmt.Fprintf(ios.ErrOut, "%s: warning: %s\n", w.Pos, w.Message)
	}
	for _, e := range res.Errors {
		fmt.Fprintln(ios.ErrOut, e.String())
	}
	if n := len(res.Errors); n > 0 {
		fmt.Fprintf(ios.ErrOut, "%s found; the file is not valid\n", countNoun(n, "error"))
		return &ExitError{Code: ExitFailure, Silent: true}
	}
	return nil
}

func summary(f *deployfile.File) string {
	objects := 0
	for _, m := range f.Manifests {
		for _, mf := range m.Files {
			objects += len(mf.Objects)
		}
	}
	queries := 0
	if f.Analysis != nil {
		queries = len(f.Analysis.Queries)
	}
	return fmt.Sprintf("application %q, %s, %s, %s (%s read), %s, %s",
		f.Application, countNoun(len(f.Targets), "target"), countNoun(len(f.Strategies), "strategy"),
		countNoun(len(f.Manifests), "manifest entry"), countNoun(objects, "object"),
		countNoun(len(f.Webhooks), "webhook"), countNoun(queries, "analysis query"))
}

func countNoun(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	switch {
	case strings.HasSuffix(noun, "y") && !strings.HasSuffix(noun, "ey"):
		noun = strings.TrimSuffix(noun, "y") + "ies"
	default:
		noun += "s"
	}
	return fmt.Sprintf("%d %s", n, noun)
}

func nonNil(ps deployfile.Problems) deployfile.Problems {
	if ps == nil {
		return deployfile.Problems{}
	}
	return ps
}
