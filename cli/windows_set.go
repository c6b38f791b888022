package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sortie-cd/sortie/pipeline"
)

// WindowsSetOptions are the inputs of `sortie windows set`.
type WindowsSetOptions struct {
	Conn  connOptions
	Scope scopeFlags
	Name  string
	// Days are weekdays and ranges of them: "mon-fri,sun".
	Days     string
	Dates    []string
	Start    string
	End      string
	TimeZone string
	Mode     string
	Output   string
}

func newWindowsSetCmd(ios IOStreams) *cobra.Command {
	opts := WindowsSetOptions{}
	cmd := &cobra.Command{
		Use:   "set NAME [--application APP | --target TARGET] [--days mon-fri] [--dates YYYY-MM-DD,...] [--start HH:MM --end HH:MM] [--time-zone ZONE] [--mode queue|refuse]",
		Short: "Create or replace a deploy window",
		Long: strings.TrimSpace(`
Create or replace the deploy window NAME of the tenant, an application or a
target. It is open on --days (or --dates; every day when neither is given)
from --start to --end, wall-clock time in --time-zone (default UTC); an end
not after the start runs past midnight, and no --start and --end is the whole
day. Outside it a start waits (--mode queue) or is refused (--mode refuse);
without --mode, the deployment file says (deploymentConfig.outsideDeployWindow,
default queue).`),
		Example: strings.TrimSpace(`
  sortie windows set office --days mon-fri --start 09:00 --end 17:00 --time-zone Europe/Paris
  sortie windows set nightly --target prod --start 22:00 --end 02:00 --mode refuse
  sortie windows set release-day --application web --dates 2026-12-01,2026-12-15`),
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			return runWindowsSet(cmd.Context(), ios, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Days, "days", "", "weekdays: mon,tue,... and ranges such as mon-fri")
	f.StringSliceVar(&opts.Dates, "dates", nil, "calendar dates, YYYY-MM-DD")
	f.StringVar(&opts.Start, "start", "", "opening time, HH:MM")
	f.StringVar(&opts.End, "end", "", "closing time, HH:MM")
	f.StringVar(&opts.TimeZone, "time-zone", "", "IANA time zone, such as Europe/Paris (default UTC)")
	f.StringVar(&opts.Mode, "mode", "", "queue (wait until the window opens) or refuse; unset, the deployment file's deploymentConfig.outsideDeployWindow decides (default queue)")
	opts.Scope.bind(cmd)
	opts.Conn.bind(cmd)
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

var weekdayOrder = []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}

// parseDays expands "mon-fri,sun" into weekdays.
func parseDays(s string) ([]string, error) {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		part = strings.ToLower(strings.TrimSpace(part))
		if part == "" {
			continue
		}
		from, to, isRange := strings.Cut(part, "-")
		i, j := slices.Index(weekdayOrder, from), slices.Index(weekdayOrder, to)
		if !isRange {
			j = i
		}
		if i < 0 || j < 0 || j < i {
			return nil, usageErrorf("--days: %q is not a weekday (mon ... sun) or a range of them such as mon-fri", part)
		}
		for _, d := range weekdayOrder[i : j+1] {
			if !slices.Contains(out, d) {
				out = append(out, d)
			}
		}
	}
	return out, nil
}

func runWindowsSet(ctx context.Context, ios IOStreams, opts WindowsSetOptions) error {
	days, err := parseDays(opts.Days)
	if err != nil {
		return err
	}
	w := pipeline.Window{Name: opts.Name, Scope: opts.Scope.scope(), Days: days, Dates: opts.Dates,
		Start: opts.Start, End: opts.End, TimeZone: opts.TimeZone, Mode: pipeline.WindowMode(opts.Mode)}
	c, err := apiCommand(ios, opts.Output, opts.Conn)
	if err != nil {
		return err
	}
	saved, err := c.PutWindow(ctx, w)
	if err != nil {
		return err
	}
	return writeData(ios.Out, opts.Output, saved, func(out io.Writer) error {
		_, err := fmt.Fprintf(out, "Set %s.\n", saved.String())
		return err
	})
}
