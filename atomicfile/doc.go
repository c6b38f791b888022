// Package atomicfile replaces a file with a complete new copy readable by its
// owner only: write, sync and close a temporary file beside it, rename it over
// the old one, sync the directory, checking each step. A reader sees the old
// file or the whole new one, and a failed write never leaves a truncated file
// in place (the master key, the signing keys, the preview key and the
// bootstrap credential are written this way).
//
// It must not import anything outside the standard library, nor log.
package atomicfile
