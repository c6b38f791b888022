// Package analysis judges a new version by metric queries: the analysis
// step of a deployment file, run against a tenant's metric providers
// (Prometheus, Datadog, New Relic).
//
// # What it provides
//
//   - Config, the settings of a metric provider as stored per tenant
//     (store.MetricProvider.Config), and its Validate. Credentials are
//     named secrets, resolved through a SecretResolver at query time.
//   - Open returns the Provider of a Config: one instant query per call,
//     answering one number. Prometheus (GET /api/v1/query at the window's
//     end; none, basic or bearer auth; optionally through an agent's relay,
//     the seam for networkMode remoteNetworkAgent), Datadog (GET
//     /api/v1/query, the mean of the one series' points in the window), New
//     Relic (NerdGraph NRQL, the one number of the one result row).
//     The credentials' names and allowed hosts go with each request as its
//     egress.Scope, for the server's egress client (or the relay) to
//     enforce on every hop; a refusal is an error, not "unreachable".
//     Errors quote what the provider answered with every secret value it
//     was sent (and the basic-auth pair) masked: a provider, or a proxy
//     before it, may quote the request back, credentials included.
//   - Analyzer.Run runs one analysis step: every interval, numberOfJudgmentRuns
//     times, each query rendered with the window's variables, sent, and its
//     value compared with lowerLimit/upperLimit. The window grows from the
//     analysis start (GROWING, the default) or is the last interval
//     (SLIDING). Each judgment (query as sent, value, limits, verdict) is
//     handed to a report callback as it is made. As Armory specified it,
//     each query's mean over all runs, compared with its limits after the
//     last run, decides (a judgment of its own, Mean set); with the step's
//     abortOnFailedJudgment the first run outside the limits ends the
//     analysis instead. No data, NaN, an ambiguous answer or a provider
//     still unreachable when the next run is due is "inconclusive".
//
// Waits are timers firing at the runs' deadlines, never polling.
//
// # What it must not do
//
// Decide what a failure or an inconclusive result does to the deployment
// (the engine does, by the step's rollBackMode, rollForwardMode and
// inconclusive settings), persist anything, or
// show a secret value: credentials go into request headers only.
package analysis
