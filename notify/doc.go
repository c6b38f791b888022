// Package notify tells people about pipelines: a tenant's subscriptions
// (an application, a target, chosen events) name a sink (Slack, Microsoft
// Teams, a generic JSON webhook, CloudEvents over HTTP) whose secrets live
// in the tenant's secrets and are named, never held. The Notifier reads
// the pipelines' events from the store past a per-pipeline cursor, writes
// each message into the store's outbox in the same transaction that moves
// the cursor (so a restart loses and repeats nothing), and drains the
// outbox with retries and backoff on an injected clock, recording every
// attempt. With several replicas on one database each message is claimed
// by one notifier before it is sent (store ClaimOutbox), so it is sent
// once; a stopping notifier gives back what it had not begun. Links signs approve and roll back links bound to a pipeline,
// step and action, which expire and are used once.
//
// It must not import the runner, the API, the console or Kubernetes, act on
// a pipeline itself (a link is redeemed through the API's own route, with
// the reader's roles), or put a secret value in a log, an error, a delivery
// record or a message.
package notify
