package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// Main runs the sortie command line with args (without the program name) and
// returns the process exit code.
func Main(ctx context.Context, args []string, ios IOStreams) int {
	return runCLI(ctx, args, ios, false)
}

func runCLI(ctx context.Context, args []string, ios IOStreams, armory bool) int {
	root := newRootCmd(ios, armory)
	root.SetArgs(args)
	root.SetIn(ios.In)
	root.SetOut(ios.Out)
	root.SetErr(ios.ErrOut)
	err := root.ExecuteContext(ctx)
	code := exitCode(err)
	if err != nil {
		var ee *ExitError
		if !(errors.As(err, &ee) && ee.Silent) {
			fmt.Fprintf(ios.ErrOut, "error: %s\n", err)
		}
		if code == ExitUsage {
			fmt.Fprintln(ios.ErrOut, "Run 'sortie --help' for usage.")
		}
	}
	return code
}

// NewRootCmd builds the whole command tree.
func NewRootCmd(ios IOStreams) *cobra.Command { return newRootCmd(ios, false) }

func newRootCmd(ios IOStreams, armory bool) *cobra.Command {
	root := &cobra.Command{
		Use:   "sortie",
		Short: "Progressive delivery to Kubernetes: canary and blue/green with approvals, webhooks and analysis",
		Long: strings.TrimSpace(`
Sortie deploys to Kubernetes from one YAML deployment file: where (targets),
what (manifests) and how (canary or blue/green strategies, with pauses,
approvals, webhooks and metric analysis). Files written for Armory
CD-as-a-Service run unchanged.`),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(flagError)
	bindGlobalFlags(root, armory)
	bindTransportFlags(root)
	root.AddCommand(
		newVersionCmd(ios),
		newExitCodesHelp(),
		newValidateCmd(ios),
		newDeployCmd(ios),
		newTemplateCmd(ios),
		newServerCmd(ios),
		newDevCmd(ios),
		newAgentCmd(ios),
		newLoginCmd(ios),
		newLogoutCmd(ios),
		newCredentialsCmd(ios),
		newAgentsCmd(ios),
		newSecretsCmd(ios),
		newConfigCmd(ios),
		newAuditCmd(ios),
		newProvidersCmd(ios),
		newWindowsCmd(ios),
		newFreezeCmd(ios),
		newNotificationsCmd(ios),
		newDeliveryCmd(ios),
		newUsersCmd(ios),
	)
	return root
}

func newExitCodesHelp() *cobra.Command {
	return &cobra.Command{
		Use:   "exit-codes",
		Short: "What sortie's exit codes mean",
		Long: strings.TrimSpace(`
sortie exits with:

  0  success; for 'deploy start' without --watch: the deployment was accepted
  1  an error, or a deployment that did not succeed
  2  a usage error: unknown command or flag, missing argument
  3  another deployment of this application is in flight (HTTP 409)
  4  the start was refused by a deploy window (mode refuse) or a freeze
     (HTTP 409, code held): try later, or 'deploy start --break-glass'`),
	}
}
