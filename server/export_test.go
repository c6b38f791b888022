package server

import "testing"

// SortieBinary is sortieBinary for the external tests (package
// server_test): ./cmd/sortie built once per test run.
func SortieBinary(t *testing.T) string { return sortieBinary(t) }

// PreviewKey is previewKey for the external tests.
var PreviewKey = previewKey
