// Package redact masks secret values in text that is recorded or shown:
// the raw value and the encoded forms an echo of it comes back in (JSON
// string escaping, URL query and path escaping, base64 standard and URL
// alphabets, padded and unpadded).
//
// # What it must not do
//
// Log, store or return a value it was given; import anything beyond the
// standard library.
package redact
