// Package dora computes the four DORA delivery measures (deployment
// frequency, lead time for changes, change failure rate, time to restore)
// per application and target over a period, from the pipelines the store
// keeps: no table of its own, nothing to migrate, the same figures after a
// restart.
//
// It must not do I/O of its own, read a clock or import anything but the
// standard library and the vocabulary packages pipeline and store: the
// API and the console pass it a way to list pipelines and the time.
package dora
