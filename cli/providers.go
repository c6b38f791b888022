package cli

import "github.com/spf13/cobra"

// newProvidersCmd is the parent of the metric-provider verbs.
func newProvidersCmd(ios IOStreams) *cobra.Command {
	return newGroupCmd("providers", "Add, list and delete your tenant's metric providers (for analysis steps)", `
Metric providers are where analysis steps send their queries: Prometheus,
Datadog or New Relic, named by metricProviderName or
analysis.defaultMetricProviderName in a deployment file. Credentials are
named secrets ('sortie secrets set'), never given here. Adding and deleting
needs the tenant-admin or organization-admin role.`,
		newProvidersAddCmd(ios), newProvidersListCmd(ios), newProvidersDeleteCmd(ios))
}
