package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/client"
	"github.com/sortie-cd/sortie/store"
)

// AuditOptions are the inputs of `sortie audit`.
type AuditOptions struct {
	Conn          connOptions
	Actor, Action string
	Since, Until  string
	Limit         int
	Output        string
}

func newAuditCmd(ios IOStreams) *cobra.Command {
	opts := AuditOptions{}
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Show the tenant's audit log: who did what, when, from where (admins)",
		Long: strings.TrimSpace(`
Show the audit log of the tenant you are logged in to, newest first: every
start, approval, skip, rollback, cancel, redeploy, webhook callback,
configuration change, credential and secret write, and login. Entries name
objects by id, never a value.`),
		Example: strings.TrimSpace(`
  sortie audit --action pipeline.approve --since 2026-01-01T00:00:00Z
  sortie audit --actor release-bot -o json`),
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runAudit(cmd.Context(), ios, opts) },
	}
	f := cmd.Flags()
	f.StringVar(&opts.Actor, "actor", "", "only entries of this principal (name or client id)")
	f.StringVar(&opts.Action, "action", "", "only this action (login, pipeline.start, pipeline.approve, secret.put, config.apply, ...)")
	f.StringVar(&opts.Since, "since", "", "only entries at or after this time (RFC 3339)")
	f.StringVar(&opts.Until, "until", "", "only entries before this time (RFC 3339)")
	f.IntVar(&opts.Limit, "limit", 100, "at most this many entries (1 to 1000)")
	opts.Conn.bind(cmd)
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func runAudit(ctx context.Context, ios IOStreams, opts AuditOptions) error {
	q := client.AuditOptions{Actor: opts.Actor, Action: opts.Action, Limit: opts.Limit}
	if err := parseSinceUntil(opts.Since, opts.Until, &q.Since, &q.Until); err != nil {
		return err
	}
	c, err := apiCommand(ios, opts.Output, opts.Conn)
	if err != nil {
		return err
	}
	es, err := c.ListAudit(ctx, q)
	if err != nil {
		return err
	}
	if es == nil {
		es = []store.AuditEntry{}
	}
	return writeData(ios.Out, opts.Output, api.AuditList{Entries: es}, func(w io.Writer) error {
		if len(es) == 0 {
			_, err := fmt.Fprintln(w, "No audit entries.")
			return err
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "TIME\tACTOR\tCLIENT ID\tFROM\tACTION\tOBJECTS")
		for _, e := range es {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", fmtTime(e.At), e.Actor, e.ClientID, e.Remote, e.Action, strings.Join(e.Objects, " "))
		}
		return tw.Flush()
	})
}

// parseSinceUntil reads the values of --since and --until (RFC 3339;
// empty leaves the time zero) into since and until.
func parseSinceUntil(sinceFlag, untilFlag string, since, until *time.Time) error {
	for flag, pair := range map[string]struct {
		v   string
		dst *time.Time
	}{"--since": {sinceFlag, since}, "--until": {untilFlag, until}} {
		if pair.v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, pair.v)
		if err != nil {
			return usageErrorf("%s %q is not an RFC 3339 time such as 2026-01-02T15:04:05Z", flag, pair.v)
		}
		*pair.dst = t
	}
	return nil
}
