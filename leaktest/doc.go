// Package leaktest checks, after a part of Sortie was stopped, that no
// goroutine of it runs on: the test names the functions (by prefix, such as
// "github.com/sortie-cd/sortie/agent.(*Agent)") whose goroutines must be
// gone, and Check reads every goroutine's stack until none is in one of
// them. A goroutine's end has no event to wait on, so the stacks are read
// again on a short interval, for a bounded time.
//
// It must not be imported outside tests.
package leaktest
