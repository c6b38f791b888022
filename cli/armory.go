package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/client"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
)

// Armory CD-as-a-Service's CLI (armory-io/armory-cli) is what Sortie's users
// ran from CI. This file accepts its command line as it was: the persistent
// -c/--clientId, -s/--clientSecret, -v/--verbose, the hidden --addr and
// -a/--authToken, ARMORY_<FLAG> variables in the flat and the snake
// spelling, the camel-case flag names of its subcommands, and, when the
// binary runs under the name "armory", its output lines and exit codes.
// docs/cli.md has the table of what maps to what.

// globalFlags are the persistent flags every command has (Armory's).
type globalFlags struct {
	ClientID, ClientSecret string
	Addr, AuthToken        string
	Verbose                bool
	// Armory is set when the binary runs as "armory": Armory's output
	// lines, JSON shapes and exit codes.
	Armory bool
}

// globals holds the flags of the one command line being run; NewRootCmd
// resets it (one command line per process, tests run them one at a time).
var globals globalFlags

// MainAs is Main for a program called name (argv[0]'s base name): under
// "armory" it behaves as Armory's CLI did.
func MainAs(ctx context.Context, name string, args []string, ios IOStreams) int {
	armory := strings.TrimSuffix(name, ".exe") == "armory"
	code := runCLI(ctx, args, ios, armory)
	if armory && code == ExitUsage {
		return ExitFailure // Armory's CLI kept 2 reserved: bad flags exit 1
	}
	return code
}

// bindGlobalFlags adds Armory's persistent flags to root and the
// normalization that maps its camel-case flag names onto Sortie's.
func bindGlobalFlags(root *cobra.Command, armory bool) {
	globals = globalFlags{Armory: armory}
	pf := root.PersistentFlags()
	pf.StringVarP(&globals.ClientID, "clientId", "c", "", "client id of a client credential (Armory's flag; SORTIE_CLIENT_ID)")
	pf.StringVarP(&globals.ClientSecret, "clientSecret", "s", "", "its secret (Armory's flag; SORTIE_CLIENT_SECRET)")
	pf.BoolVarP(&globals.Verbose, "verbose", "v", false, "tell each request to the server on standard error (method, URL, status, time; never a token)")
	pf.StringVar(&globals.Addr, "addr", "", "the server's URL (Armory's hidden flag; --server is Sortie's)")
	pf.StringVarP(&globals.AuthToken, "authToken", "a", "", "a token to use as is (Armory's hidden flag; SORTIE_TOKEN)")
	_ = pf.MarkHidden("addr")
	_ = pf.MarkHidden("authToken")
	root.SetGlobalNormalizationFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		if n, ok := armoryFlagNames[name]; ok {
			return pflag.NormalizedName(n)
		}
		return pflag.NormalizedName(name)
	})
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if err := applyArmoryEnv(cmd); err != nil {
			return err
		}
		verboseOut = nil
		if globals.Verbose {
			verboseOut = cmd.ErrOrStderr()
		}
		return nil
	}
}

// armoryFlagNames are Armory's spellings of flags Sortie spells otherwise.
var armoryFlagNames = map[string]string{
	"targetFilters": "target",
	"pipelineId":    "pipeline-id",
	"deploymentId":  "deployment-id",
	"envName":       "tenant",
}

// armoryEnvFlags are the flags Armory read from ARMORY_<FLAG>.
var armoryEnvFlags = []string{"clientId", "clientSecret", "addr", "authToken", "output", "verbose"}

// applyArmoryEnv sets each flag of armoryEnvFlags the command line did not
// give from ARMORY_<FLAG>, flat (ARMORY_CLIENTID) or snake (ARMORY_CLIENT_ID),
// and maps Armory's `-o plain` to text.
func applyArmoryEnv(cmd *cobra.Command) error {
	for _, name := range armoryEnvFlags {
		f := cmd.Flags().Lookup(name)
		if f == nil || f.Changed || name != "output" && f != cmd.Root().PersistentFlags().Lookup(name) {
			// Only Armory's own flags: `sortie server --addr` is a listen
			// address, never ARMORY_ADDR.
			continue
		}
		for _, env := range armoryEnvNames(name) {
			if v, ok := os.LookupEnv(env); ok && v != "" {
				if err := f.Value.Set(v); err != nil {
					return usageErrorf("%s: %v", env, err)
				}
				break
			}
		}
	}
	if f := cmd.Flags().Lookup("output"); f != nil && strings.EqualFold(f.Value.String(), "plain") {
		_ = f.Value.Set("text")
	}
	return nil
}

var camelHump = regexp.MustCompile(`([a-z0-9])([A-Z])`)

// armoryEnvNames are ARMORY_CLIENTID and ARMORY_CLIENT_ID for clientId.
func armoryEnvNames(flag string) []string {
	flat := "ARMORY_" + strings.ToUpper(flag)
	snake := "ARMORY_" + strings.ToUpper(camelHump.ReplaceAllString(flag, "${1}_${2}"))
	if flat == snake {
		return []string{flat}
	}
	return []string{flat, snake}
}

// applyGlobals lets the persistent flags (and their ARMORY_* variables)
// override the environment's credentials and server.
func (e *environment) applyGlobals() {
	if globals.ClientID != "" || globals.ClientSecret != "" {
		e.ClientID, e.ClientSecret = globals.ClientID, globals.ClientSecret
	}
	if globals.AuthToken != "" {
		e.Token = globals.AuthToken
	}
	if e.Server == "" {
		e.Server = globals.Addr
	}
}

// armoryUnsupported are flags of Armory's CLI that Sortie has no use for,
// with why; an unknown flag among them says so.
var armoryUnsupported = map[string]string{
	"audience":       "Armory Cloud's token audience; Sortie's server issues its own tokens (give --server)",
	"tokenIssuerUrl": "Armory Cloud's token issuer; Sortie's server is its own (give --server)",
	"deployHostUrl":  "Armory Cloud's API host; give --server (or --addr, ARMORY_ADDR)",
	"test":           "a switch of Armory's own tests",
	"context":        "Armory's configuration contexts; Sortie has one config file (SORTIE_CONFIG)",
	"C":              "Armory's configuration contexts; Sortie has one config file (SORTIE_CONFIG)",
}

var unknownFlag = regexp.MustCompile(`unknown (?:shorthand )?flag: '?-{0,2}([A-Za-z0-9_-]+)'?`)

// flagError names the flag; one of Armory's that Sortie does not support
// says so.
func flagError(_ *cobra.Command, err error) error {
	if m := unknownFlag.FindStringSubmatch(err.Error()); m != nil {
		if why, ok := armoryUnsupported[m[1]]; ok {
			return usageErrorf("%v: an option of Armory's CLI that Sortie does not support (%s)", err, why)
		}
	}
	return usageError{err}
}

// now is the clock of Armory's timestamped lines.
var now = time.Now

func armoryStamp() string { return now().Format(time.RFC3339) }

// armoryStartOutput is Armory's `deploy start -o json`.
type armoryStartOutput struct {
	DeploymentID string `json:"deploymentId,omitempty"`
	Status       string `json:"status,omitempty"`
}

// writeArmoryStart prints what Armory printed once a deployment started.
func writeArmoryStart(w io.Writer, out startOutput) {
	fmt.Fprintf(w, "[%s] Deployment ID: %s\n", armoryStamp(), out.PipelineID)
	fmt.Fprintf(w, "See the deployment status UI: %s\n", out.Link)
	for _, wn := range out.Warnings {
		fmt.Fprintf(w, "warning: %s\n", wn)
	}
}

// armoryWatch follows a deployment as Armory's --watch did: one line per
// change of the deployment's status, then its final status. It follows the
// event stream (no polling).
func armoryWatch(ctx context.Context, c *client.Client, out startOutput, w io.Writer) (*api.PipelineView, error) {
	if w != nil {
		fmt.Fprintf(w, "[%s] Waiting for deployment to complete. Status UI: %s\n", armoryStamp(), out.Link)
	}
	var last pipeline.Status
	err := c.FollowPipeline(ctx, out.PipelineID, 0, client.FollowOptions{}, func(ev store.Event) error {
		var ch pipeline.Change
		if ev.Type != "status" || json.Unmarshal(ev.Data, &ch) != nil || ch.Target != "" || ch.Step != "" {
			return nil
		}
		if ch.To != last && w != nil {
			fmt.Fprintf(w, "[%s] Deployment status changed: %s\n", armoryStamp(), ch.To)
		}
		last = ch.To
		if ch.To.Terminal() {
			return client.ErrStop
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return nil, nil
		}
		return nil, err
	}
	v, err := c.GetPipeline(ctx, out.PipelineID)
	if err != nil {
		return nil, err
	}
	if w != nil {
		fmt.Fprintf(w, "[%s] Deployment %s completed with status: %s\n", armoryStamp(), out.PipelineID, v.Status)
	}
	return v, nil
}

// writeArmoryStatus is Armory's `deploy status` text.
func writeArmoryStatus(w io.Writer, v *api.PipelineView) {
	t := armoryStamp()
	fmt.Fprintf(w, "[%s] application: %s, started: %s\n", t, v.Application, v.CreatedAt.UTC().Format(time.RFC3339))
	switch v.Status {
	case pipeline.StatusPaused:
		fmt.Fprintf(w, "[%s] status: [%s] msg: Paused. You can skip the pause in the console or with 'sortie deploy skip %s'\n", t, v.Status, v.ID)
	case pipeline.StatusAwaitingApproval:
		fmt.Fprintf(w, "[%s] status: [%s] msg: Paused for Manual Judgment. You can approve the rollout in the console or with 'sortie deploy approve %s'.\n", t, v.Status, v.ID)
	default:
		fmt.Fprintf(w, "[%s] status: %s\n", t, v.Status)
	}
}
