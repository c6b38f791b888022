package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/notify"
)

// NotificationsAddOptions are the inputs of `sortie notifications add`.
type NotificationsAddOptions struct {
	Conn        connOptions
	ID          string
	Application string
	Target      string
	Events      []string
	// Type is the sink's type; Settings its settings.
	Type     string
	Settings notify.Sink
	Output   string
}

func newNotificationsAddCmd(ios IOStreams) *cobra.Command {
	opts := NotificationsAddOptions{}
	cmd := &cobra.Command{
		Use:   "add ID --sink slack|teams|webhook|cloudevents --events E,... [flags]",
		Short: "Subscribe a sink to pipeline events",
		Long: strings.TrimSpace(`
Subscribe a sink, under ID, to events of an application and target (all when
not given). Events: ` + strings.Join(notify.Events, ", ") + `.

  slack        --url-secret (an incoming webhook URL), or --token-secret (a bot
               token) and --channel
  teams        --url-secret (an incoming webhook or workflow URL)
  webhook      --url, or --url-secret; --auth-secret is sent as Authorization
  cloudevents  as webhook, and --mode binary (default) or structured

Secrets are named, not given: set them first with 'sortie secrets set'.`),
		Example: strings.TrimSpace(`
  sortie secrets set slack-ops-url
  sortie notifications add ops --sink slack --url-secret slack-ops-url --application web --target prod --events waiting_for_approval,failed,rolled_back
  sortie notifications add audit --sink cloudevents --url https://events.example.com/sortie --mode structured --events succeeded,failed`),
		Args: exactArgs(1, "ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ID = args[0]
			return runNotificationsAdd(cmd.Context(), ios, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Settings.URL, "url", "", "webhook, cloudevents: the URL, when it holds no token")
	f.StringVar(&opts.Settings.URLSecret, "url-secret", "", "the secret holding the URL to post to")
	f.StringVar(&opts.Settings.TokenSecret, "token-secret", "", "slack: the secret holding a bot token")
	f.StringVar(&opts.Settings.Channel, "channel", "", "slack: the channel a bot token posts to")
	f.StringVar(&opts.Settings.APIURL, "api-url", "", "slack: the Web API's base URL (default "+notify.DefaultSlackAPI+")")
	f.StringVar(&opts.Settings.AuthSecret, "auth-secret", "", "webhook, cloudevents: the secret sent as the Authorization header")
	f.StringVar(&opts.Settings.Mode, "mode", "", "cloudevents: binary or structured")
	f.StringVar(&opts.Type, "sink", "", "slack, teams, webhook or cloudevents (required)")
	f.StringVar(&opts.Application, "application", "", "only pipelines of this application")
	f.StringVar(&opts.Target, "target", "", "only this target")
	f.StringSliceVar(&opts.Events, "events", nil, "the events to send (required)")
	opts.Conn.bind(cmd)
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func runNotificationsAdd(ctx context.Context, ios IOStreams, opts NotificationsAddOptions) error {
	if opts.Type == "" {
		return usageErrorf("--sink is required: %s, %s, %s or %s", notify.SinkSlack, notify.SinkTeams, notify.SinkWebhook, notify.SinkCloudEvents)
	}
	if len(opts.Events) == 0 {
		return usageErrorf("--events is required: some of %s", strings.Join(notify.Events, ", "))
	}
	sink, err := json.Marshal(opts.Settings)
	if err != nil {
		return err
	}
	c, err := apiCommand(ios, opts.Output, opts.Conn)
	if err != nil {
		return err
	}
	sub, err := c.CreateSubscription(ctx, api.Subscription{ID: opts.ID, Application: opts.Application, Target: opts.Target,
		Events: opts.Events, SinkType: opts.Type, Sink: sink})
	if err != nil {
		return err
	}
	return writeData(ios.Out, opts.Output, sub, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "Added subscription %s (%s). Try it with 'sortie notifications test %s'.\n", sub.ID, sub.SinkType, sub.ID)
		return err
	})
}
