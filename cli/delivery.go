package cli

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sortie-cd/sortie/client"
)

// DeliveryOptions are the inputs of `sortie delivery`.
type DeliveryOptions struct {
	Conn         connOptions
	Output       string
	Application  string
	Days         int
	Since, Until string
}

func newDeliveryCmd(ios IOStreams) *cobra.Command {
	opts := DeliveryOptions{}
	cmd := &cobra.Command{
		Use:   "delivery",
		Short: "The DORA measures per application and target: deployment frequency, lead time, change failure rate, time to restore",
		Long: `Deployment frequency (successes a day), lead time (median, from the pipeline's creation to the
target's success: Sortie does not know a commit's time), change failure rate (failed or rolled back
over all that ended) and time to restore (median, from a failure's end to the next success), computed
by the server from the tenant's pipelines over the period (default the last 30 days).`,
		Example: "  sortie delivery --days 7\n  sortie delivery --application web --since 2026-01-01T00:00:00Z -o json",
		Args:    noArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return runDelivery(cmd.Context(), ios, opts) },
	}
	f := cmd.Flags()
	f.StringVar(&opts.Application, "application", "", "only this application")
	f.IntVar(&opts.Days, "days", 0, "the period's length in days, up to --until (default 30)")
	f.StringVar(&opts.Since, "since", "", "the period's start (RFC 3339), instead of --days")
	f.StringVar(&opts.Until, "until", "", "the period's end (RFC 3339; default now)")
	opts.Conn.bind(cmd)
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func runDelivery(ctx context.Context, ios IOStreams, opts DeliveryOptions) error {
	o := client.DoraOptions{Application: opts.Application, Days: opts.Days}
	if err := parseSinceUntil(opts.Since, opts.Until, &o.Since, &o.Until); err != nil {
		return err
	}
	c, err := apiCommand(ios, opts.Output, opts.Conn)
	if err != nil {
		return err
	}
	rep, err := c.Dora(ctx, o)
	if err != nil {
		return err
	}
	return writeData(ios.Out, opts.Output, rep, func(w io.Writer) error {
		fmt.Fprintf(w, "From %s to %s (lead time from: %s)\n", rep.From.UTC().Format(time.RFC3339), rep.To.UTC().Format(time.RFC3339), rep.LeadTimeFrom)
		if len(rep.Rows) == 0 {
			_, err := fmt.Fprintln(w, "No deployment ended in this period.")
			return err
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "APPLICATION\tTARGET\tDEPLOYMENTS\tFAILURES\tPER DAY\tLEAD TIME\tCHANGE FAILURE RATE\tTIME TO RESTORE\tNOT RESTORED")
		rows := append(rep.Rows, rep.Total)
		rows[len(rows)-1].Application, rows[len(rows)-1].Target = "(all)", ""
		for _, r := range rows {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.2f\t%s\t%.0f%%\t%s\t%d\n", r.Application, r.Target, r.Deployments, r.Failures, r.PerDay,
				secondsText(r.LeadTimeSeconds), r.ChangeFailureRate*100, secondsText(r.TimeToRestoreSeconds), r.Unrestored)
		}
		return tw.Flush()
	})
}

// secondsText is a median in seconds as a duration, "-" for none.
func secondsText(v float64) string {
	if v == 0 {
		return "-"
	}
	return (time.Duration(v) * time.Second).Round(time.Second).String()
}
