// Package storetest is the conformance suite of store.Store: every
// implementation (store/sqlite, later store/postgres) runs Run from its own
// tests, and the kill test (CrashWriter in a child process, Kill in the
// parent) when it can start one.
//
// # What it checks
//
// Every method and every behaviour store.go documents: creation with
// version 1 and the first events, reads that return exactly what was
// written (State compared field by field with go-cmp and as JSON byte for
// byte, times in UTC to the nanosecond), every ListPipelines filter,
// newest first, the default limit and the empty Source; optimistic
// concurrency (a stale save is ErrConflict and writes nothing, no event
// either; of concurrent saves of one version exactly one wins); event Seq
// from 1 per pipeline, atomic with the save; Events after a seq;
// admission serialised with concurrent creations (through two handles on
// one database, exactly one of many starts passes a one-in-flight rule);
// ApplicationRefs and ResumablePipelines without finished pipelines;
// DeployedBefore; tenants and credentials; tenant isolation on every read;
// errors.Is for ErrNotFound and ErrConflict; a reopen while the first
// handle is still open; and, with Kill, a process killed by SIGKILL in the
// middle of a stream of saves, after which every reported save is there,
// whole, and nothing is half-written.
//
// It also holds the benchmarks every store reports (BenchmarkSave,
// BenchmarkSaveParallel, BenchmarkCreate) and the fixtures they share
// (CanaryPipeline: a three-target canary part-way through, built with the
// real engine).
//
// # What it must not do
//
// It must not know any implementation: it takes an Opener and talks only
// through store.Store. It never sleeps; concurrent cases start together on
// a closed channel and wait for each other.
package storetest
