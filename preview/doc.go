// Package preview serves the preview URLs of exposeServices steps: each
// exposed Service of a target gets a URL under the server's public URL,
// /preview/TOKEN/, that the server proxies into the target's cluster (over
// the agent's stream, or through the in-process executor) to that Service,
// until the step's ttl has passed; then it answers 410 Gone and reaches
// nothing. The cluster needs no inbound port.
//
// A token names tenant, pipeline, target and Service and carries an
// HMAC-SHA256 of them under the server's preview key, so it cannot be
// guessed or altered; nothing is stored per link: validity comes from the
// pipeline's state (the step succeeded, and its end plus the ttl is still
// ahead). Like Armory's, a link needs no login: it is meant to be handed to
// whoever tests the new version. It reaches only the Service it names,
// never forwards the caller's Cookie or Authorization header, and stops
// with its ttl.
//
// It must not talk to a cluster itself (the Doer the server gives does),
// import Kubernetes packages, or log a token.
package preview
