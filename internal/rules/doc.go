// Package rules holds the test that keeps every package's doc.go honest:
// each says what it must not do, and the imports the package and its
// dependencies really have are checked against a table of those promises
// (rules_test.go). A new package fails the test until it has a doc.go
// with a "must not" and a row in the table.
//
// It must not be imported: it has no code, only the test.
package rules
