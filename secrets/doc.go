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
// Service.Secret implements webhook.SecretResolver.
//
// # What it must not do
//
// Return a value anywhere but Secret (resolution for a webhook or a
// provider), log a value or a key, or put one in an error. The store never
// sees a value or a data key in clear.
package secrets
