// Package client is a typed Go client of Sortie's REST API: it fetches and
// refreshes access tokens with the client-credentials grant, calls every
// route under /api/v1, follows Server-Sent Event streams (reconnecting with
// Last-Event-ID) and decodes error answers into *Error. It refuses an
// http:// server that is not a loopback address unless told Plaintext, so
// a secret never crosses the network in the clear by mistake.
//
// It must not read the environment, flags or files (the command line gives
// it an Options value), and must never put a client secret or a token in an
// error, a log line or anything else it returns.
package client
