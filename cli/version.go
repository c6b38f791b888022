package cli

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Version is set at link time (-ldflags "-X github.com/sortie-cd/sortie/cli.Version=...").
var Version = "dev"

// ImageRepository is the repository of the container image `make image`
// builds (set at link time with Version); `sortie agent manifest` names
// ImageRepository:Version by default.
var ImageRepository = "ghcr.io/sortie-cd/sortie"

// Image is the container image of this build.
func Image() string { return ImageRepository + ":" + Version }

// versionOutput is `version -o json`; Armory's CLI printed {"version": ...}.
type versionOutput struct {
	Version  string `json:"version"`
	Revision string `json:"revision,omitempty"`
	Go       string `json:"go,omitempty"`
	Platform string `json:"platform,omitempty"`
}

func newVersionCmd(ios IOStreams) *cobra.Command {
	output := ""
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version of sortie",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			rev := "unknown"
			if info, ok := debug.ReadBuildInfo(); ok {
				for _, s := range info.Settings {
					if s.Key == "vcs.revision" && len(s.Value) >= 12 {
						rev = s.Value[:12]
					}
				}
			}
			v := versionOutput{Version: Version, Revision: rev, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
			if globals.Armory && output == "text" {
				// Armory's CLI printed its version as JSON whatever -o said.
				output = "json"
			}
			return writeData(ios.Out, output, v, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "sortie %s (%s, %s, %s)\n", v.Version, v.Revision, v.Go, v.Platform)
				return err
			})
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}
