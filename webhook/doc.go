// Package webhook renders and sends the HTTP calls of a deployment file's
// webhooks: method, uriTemplate, headers and bodyTemplate.inline rendered
// with {{armory.*}} / {{sortie.*}}, {{context.*}} and {{secrets.*}}, then
// sent with retryCount retries and exponential backoff on connection errors
// and 5xx answers.
//
// # What it provides
//
//   - Render turns a deployfile.Webhook and its variables into a Request.
//     A {{secrets.NAME}} is resolved through a SecretResolver; a secret that
//     is not set fails the render with "secret NAME is not set", never an
//     empty string. Request.Masked shows the request with every secret value
//     replaced, for logs and the pipeline's events.
//
//   - Sender.Send sends a Request: networkMode direct through its Direct
//     Doer (from the server), remoteNetworkAgent through its Relay (the
//     agent named by agentIdentifier, default the target's account). Relay
//     is the seam for the agent's HTTP relay; nil refuses such webhooks with
//     a clear error. Each request's context carries its egress.Scope: the
//     secrets rendered into it and their allowed hosts, which the server's
//     egress client (or the relay) enforces on every hop. A refusal by the
//     egress policy fails the call at once, without retries, and says what
//     was refused; the target's answer is never read.
//
//   - A call made in a context holding a recording span (the runner's
//     command span) is a client span of it, and every call carries the W3C
//     traceparent of the context's span, if any, so that its receiver can
//     join the pipeline's trace. The span holds the webhook's name, the
//     method, the masked host and the status: never the URL's path or
//     query, a header or the body.
//
// Waiting for the callback is not here: the engine holds the step until a
// pipeline.WebhookCallback arrives through the API, or its deadline.
//
// # What it must not do
//
// Log, return or show a secret value: errors and Masked text are masked.
// No state between calls, no knowledge of pipelines or the store.
package webhook
