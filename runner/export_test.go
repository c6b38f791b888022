package runner

// SetDelivering makes f run before each delivery of events to a subscriber,
// with no lock held: how a test plays a slow fan-out.
func SetDelivering(r *Runner, f func(tenant string)) { r.subs.delivering = f }
