// Command genschema writes the JSON Schema of the deployment file to the
// path given as its argument (go generate ./deployfile).
//
// It must not decide anything about the schema: deployfile.Schema does;
// this only writes it.
package main
