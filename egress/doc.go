// Package egress decides where the calls Sortie makes on a deployer's
// behalf may go: webhooks and metric queries from the server, and the HTTP
// calls an agent relays inside its cluster. A deployment file names their
// URLs, so without a policy a deployer could make the server (or an agent)
// call its own loopback services, the cloud's metadata endpoint or the
// server's own API, and read the start of the answer in a step's message.
//
// # What it provides
//
//   - Classify says why an IP address is refused by default: loopback,
//     link-local, a cloud metadata address (169.254.169.254,
//     fd00:ec2::254, 100.100.100.200), unspecified ("this host") or
//     multicast. Private ranges (10/8, 172.16/12, 192.168/16, fc00::/7) are
//     allowed: in-cluster services are the normal targets.
//   - Policy holds the operator's allow-list (--egress-allow on the server,
//     --relay-allow on the agent) and the server's own addresses, which are
//     refused whatever the allow-list says. Policy.Control is a
//     net.Dialer Control func: it checks the address actually dialed, after
//     DNS, so a redirect or a name that resolves differently the second
//     time (DNS rebinding) is checked too. Policy.Client is an http.Client
//     on such a dialer.
//   - Scope, carried by a request's context, says what the request holds:
//     a secret (then no redirect may leave the request's host), and the
//     hosts each host-restricted secret it holds may be sent to (a secret's
//     allowedHosts). The Client checks every hop, redirects included;
//     an agent's relay is given the scope with the call.
//   - DeniedError is a refusal; its message names the address, why, and
//     the flag that allows it, never the request's path or query.
//
// With HTTPS_PROXY set, the dialed address is the proxy's: the proxy, the
// operator's choice, decides where calls go, and only literal IP targets
// are checked against the policy before the call.
//
// # What it must not do
//
// Import anything but the standard library (the agent and the server both
// link it), read flags or the environment (the proxy variables aside, as
// net/http reads them), or keep state between calls. A refusal must never
// carry the URL's path or query, which may hold a secret.
package egress
