// Package secrets keeps the tenants' secrets encrypted at rest and
// resolves them for webhooks and metric providers.
//
// # What it provides
//
// Envelope encryption: each tenant has a random 256-bit data key, stored
// wrapped (AES-256-GCM) by the server's master key; each secret is sealed
// (AES-256-GCM) under its tenant's data key, with the tenant and name as
// additional data so a ciphertext moved to another row does not open. The
// master key comes from <data-dir>/master.key (created 0600 on first
// start) or from the configuration (SORTIE_MASTER_KEY, parsed in main).
//
// Service.RotateMasterKey makes a new master key and re-wraps every data
// key with it while the server runs: the key file holds the new key and the
// old one until every data key is re-wrapped, and every key of the ring
// unwraps, so secrets stay readable throughout and a crash midway resumes
// at the next start (which re-wraps whatever an old key still wraps).
//
// A secret may carry allowed hosts (set by an admin with its value): a
// request carrying it may connect only to those hosts (package egress
// enforces it on every hop). Whoever may start a deployment can render an
// unrestricted secret into a webhook to a host of their choosing; the list
// is what keeps a secret to the hosts meant to receive it. It is part of the
// ciphertext's additional data, so a row whose list was taken away in the
// store does not open.
//
// Service.Secret implements webhook.SecretResolver (value and allowed
// hosts), and notify's, for the sinks. Service.DerivedKey gives a server key for a purpose (HKDF of the
// current master key), such as the notifications' action-link HMAC key.
//
// # What it must not do
//
// Return a value anywhere but Secret (resolution for a webhook, a
// provider or a notification sink), log a value or a key, or put one in an error. The store never
// sees a value or a data key in clear.
package secrets
