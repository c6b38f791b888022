// Package promtest runs a real Prometheus (Debian's prometheus package) for
// tests, scraping every second an exporter the test controls, so a test can
// move a metric and watch what an analysis makes of it.
//
// It must not be imported outside tests. It never sleeps: it waits for
// scrapes, which the exporter observes.
package promtest
