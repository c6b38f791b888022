package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/store"
)

// events streams, as Server-Sent Events, the events of one pipeline
// (?pipeline=ID; replayed after Last-Event-ID or ?after=, then live) or of
// the whole tenant (live only: the list refetches itself on every event
// and on every reconnection). The page's script only needs to know that
// something happened; it then fetches the affected HTML fragment.
func (c *Console) events(w http.ResponseWriter, r *http.Request, s *session) {
	only := r.URL.Query().Get("pipeline")
	var after int64
	if only != "" {
		// Another tenant's id answers 404, as everywhere.
		if _, err := c.d.Get(r.Context(), s.Tenant, only); err != nil {
			c.fail(w, r, s, err)
			return
		}
		for _, v := range []string{r.URL.Query().Get("after"), r.Header.Get("Last-Event-ID")} {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
				after = n
			}
		}
	}
	release, err := c.streams.Acquire(s.Principal)
	if err != nil {
		http.Error(w, err.Error(), http.StatusTooManyRequests)
		return
	}
	defer release()
	// The stream ends when the session's token expires or its principal
	// is revoked (a deleted user, new roles, a reset password), so such a
	// session stops receiving events; the page then asks to log in again.
	ctx, done := c.auth.Stream(r.Context(), s.Principal)
	defer done()
	// Subscribe before reading the replay: whatever is appended meanwhile
	// arrives on the subscription, and the seq drops duplicates.
	live := c.d.Subscribe(ctx, s.Tenant)
	var past []store.Event
	if only != "" {
		var err error
		if past, err = c.d.Events(ctx, s.Tenant, only, after); err != nil {
			c.fail(w, r, s, err)
			return
		}
	}
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	last := after
	send := func(evs []store.Event) error {
		for _, ev := range evs {
			if only != "" {
				if ev.Pipeline != only || ev.Seq <= last {
					continue
				}
				last = ev.Seq
			}
			b, err := json.Marshal(ev)
			if err != nil {
				return err
			}
			id := strconv.FormatInt(ev.Seq, 10)
			if only == "" {
				id = ev.Pipeline + ":" + id
			}
			if _, err := fmt.Fprintf(w, "id: %s\ndata: %s\n\n", id, b); err != nil {
				return err
			}
		}
		return rc.Flush()
	}
	if _, err := fmt.Fprint(w, "retry: 2000\n\n"); err != nil || send(past) != nil {
		return
	}
	heartbeat := time.NewTicker(c.heartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case <-ctx.Done():
			if cause := context.Cause(ctx); errors.Is(cause, auth.ErrTokenExpired) || errors.Is(cause, auth.ErrTokenRevoked) {
				fmt.Fprint(w, "event: expired\ndata: {}\n\n")
				rc.Flush()
			}
			return
		case <-heartbeat.C:
			if _, err := fmt.Fprint(w, ": heartbeat\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case ev, ok := <-live:
			if !ok {
				return
			}
			if only != "" && ev.Pipeline == only && ev.Seq > last+1 {
				// The subscription dropped some: read them back.
				missed, err := c.d.Events(ctx, s.Tenant, only, last)
				if err != nil {
					c.log.Warn("console event stream: reading missed events", "pipeline", only, "err", err)
					return
				}
				if send(missed) != nil {
					return
				}
				continue
			}
			if send([]store.Event{ev}) != nil {
				return
			}
		}
	}
}
