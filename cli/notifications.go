package cli

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/sortie-cd/sortie/notify"
)

// newNotificationsCmd is the parent of the notification verbs.
func newNotificationsCmd(ios IOStreams) *cobra.Command {
	return newGroupCmd("notifications", "Subscribe Slack, Teams, webhooks or CloudEvents sinks to pipeline events", `
A subscription sends chosen events (`+strings.Join(notify.Events, ", ")+`)
of an application and target (empty: all) to a sink. Sink credentials and
URLs that embed a token (Slack and Teams webhooks) are named secrets ('sortie
secrets set'), never given here. A message about a pipeline waiting for a
person carries approve and roll back links: signed, bound to the pipeline,
step and action, expiring, usable once, and worth only the roles of whoever
opens them. Adding, deleting, testing and reading deliveries need the
tenant-admin or organization-admin role; any reading role lists.`,
		newNotificationsListCmd(ios), newNotificationsAddCmd(ios), newNotificationsDeleteCmd(ios),
		newNotificationsTestCmd(ios), newNotificationsDeliveriesCmd(ios))
}
