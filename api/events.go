package api

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
)

// replayPipelines bounds how many recent pipelines a tenant-wide stream
// looks through when it resumes after Last-Event-ID (the pipelines in
// flight are always looked through).
const replayPipelines = 200

// pipelineEvents answers GET /api/v1/pipelines/{id}/events: the stored
// events after ?after=N as JSON, or, with Accept: text/event-stream, those
// and then every new one as Server-Sent Events whose id is the event's Seq.
func (s *server) pipelineEvents(w http.ResponseWriter, r *http.Request, p Principal) {
	id := r.PathValue("id")
	after, err := cursorParam(r.URL.Query().Get("after"), "after")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// Get first: the answer for another tenant's id is a 404, never an
	// empty list.
	if _, err := s.d.Get(r.Context(), p.Tenant, id); err != nil {
		s.writeError(w, r, err)
		return
	}
	if !wantsStream(r) {
		evs, err := s.d.Events(r.Context(), p.Tenant, id, after)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if evs == nil {
			evs = []store.Event{}
		}
		writeJSON(w, http.StatusOK, EventList{Events: evs})
		return
	}
	if lei := r.Header.Get("Last-Event-ID"); lei != "" {
		if after, err = cursorParam(lei, "Last-Event-ID"); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	st := &stream{s: s, p: p, only: id, last: map[string]int64{id: after}}
	st.run(w, r, func(ctx context.Context) ([]store.Event, error) {
		return s.d.Events(ctx, p.Tenant, id, after)
	})
}

// tenantEvents answers GET /api/v1/events: every event of the caller's
// tenant from now on, as Server-Sent Events whose id is "pipeline:seq".
// With Last-Event-ID it first replays what the client missed: the rest of
// that event's pipeline, and the events of other pipelines recorded after
// it.
func (s *server) tenantEvents(w http.ResponseWriter, r *http.Request, p Principal) {
	var (
		from    string
		fromSeq int64
	)
	if lei := r.Header.Get("Last-Event-ID"); lei != "" {
		pid, seq, ok := strings.Cut(lei, ":")
		n, err := strconv.ParseInt(seq, 10, 64)
		if !ok || pid == "" || err != nil || n < 0 {
			s.writeError(w, r, errorf(http.StatusBadRequest, CodeInvalid, "Last-Event-ID must be pipeline:seq, as the stream sent it"))
			return
		}
		from, fromSeq = pid, n
	}
	st := &stream{s: s, p: p, last: map[string]int64{}}
	st.run(w, r, func(ctx context.Context) ([]store.Event, error) {
		if from == "" {
			return nil, nil
		}
		return s.missedSince(ctx, p.Tenant, from, fromSeq, st.last)
	})
}

// missedSince returns the tenant's events after pipeline from's event seq:
// from's later events, and the events of other pipelines recorded after
// that event's time. It notes in last where each pipeline's replay starts.
func (s *server) missedSince(ctx context.Context, tenant, from string, seq int64, last map[string]int64) ([]store.Event, error) {
	evs, err := s.d.Events(ctx, tenant, from, max(seq-1, 0))
	if err != nil || len(evs) == 0 || evs[0].Seq != seq {
		// The event is gone (or the pipeline is not the caller's): nothing
		// to resume from; the stream goes on live.
		return nil, nil
	}
	since := evs[0].At
	missed := evs[1:]
	last[from] = seq

	recent, err := s.d.List(ctx, tenant, store.Filter{Limit: replayPipelines})
	if err != nil {
		return nil, err
	}
	active, err := s.d.List(ctx, tenant, store.Filter{Limit: maxListLimit, Statuses: []pipeline.Status{
		pipeline.StatusQueued, pipeline.StatusRunning, pipeline.StatusPaused, pipeline.StatusAwaitingApproval,
	}})
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{from: true}
	for _, sp := range append(recent, active...) {
		if seen[sp.ID] || (!sp.UpdatedAt.IsZero() && sp.UpdatedAt.Before(since)) {
			continue
		}
		seen[sp.ID] = true
		evs, err := s.d.Events(ctx, tenant, sp.ID, 0)
		if err != nil {
			return nil, err
		}
		for _, ev := range evs {
			if ev.At.After(since) {
				missed = append(missed, ev)
			}
		}
	}
	slices.SortStableFunc(missed, func(a, b store.Event) int {
		return cmp.Or(a.At.Compare(b.At), cmp.Compare(a.Pipeline, b.Pipeline), cmp.Compare(a.Seq, b.Seq))
	})
	return missed, nil
}

// stream is one Server-Sent Events response.
type stream struct {
	s *server
	p Principal
	// only, when set, is the one pipeline streamed; ids are then bare
	// seqs, otherwise "pipeline:seq".
	only string
	// last is the last seq sent per pipeline: what de-duplicates the replay
	// and the live events, and reveals events the subscription dropped.
	last map[string]int64
	w    http.ResponseWriter
	rc   *http.ResponseController
}

// run takes one of the principal's stream slots (429 when it holds them
// all), subscribes first, then replays, then streams live events: whatever is
// appended while the replay is read arrives on the subscription, and the
// per-pipeline seqs drop what was already sent. The stream ends when the
// caller's token expires or its principal is revoked (auth.Service.Stream);
// the client reconnects with Last-Event-ID and a token that is good.
func (st *stream) run(w http.ResponseWriter, r *http.Request, replay func(context.Context) ([]store.Event, error)) {
	release, err := st.s.streams.Acquire(st.p)
	if err != nil {
		st.s.writeError(w, r, err)
		return
	}
	defer release()
	ctx, done := st.s.auth.Stream(r.Context(), st.p)
	defer done()
	live := st.s.d.Subscribe(ctx, st.p.Tenant)
	past, err := replay(ctx)
	if err != nil {
		st.s.writeError(w, r, err)
		return
	}

	st.w, st.rc = w, http.NewResponseController(w)
	// The server's write timeout must not cut a stream.
	_ = st.rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer
	w.WriteHeader(http.StatusOK)
	st.s.m.streams.Inc()
	defer st.s.m.streams.Dec()
	if _, err := fmt.Fprint(w, "retry: 2000\n\n"); err != nil {
		return
	}
	if st.send(past) != nil {
		return
	}

	heartbeat := time.NewTicker(st.s.heartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-heartbeat.C:
			if _, err := fmt.Fprint(w, ": heartbeat\n\n"); err != nil || st.rc.Flush() != nil {
				return
			}
		case ev, ok := <-live:
			if !ok {
				return // the runner stopped; the client reconnects with Last-Event-ID
			}
			if st.only != "" && ev.Pipeline != st.only {
				continue
			}
			evs := []store.Event{ev}
			if last, known := st.last[ev.Pipeline]; known && ev.Seq > last+1 {
				// The subscription dropped some: read them back.
				missed, err := st.s.d.Events(ctx, st.p.Tenant, ev.Pipeline, last)
				if err != nil {
					st.s.log.Warn("event stream: reading missed events", "pipeline", ev.Pipeline, "err", err)
					return
				}
				evs = append(missed, ev)
			}
			if st.send(evs) != nil {
				return
			}
		}
	}
}

// send writes the events not sent yet and flushes.
func (st *stream) send(evs []store.Event) error {
	for _, ev := range evs {
		if last, known := st.last[ev.Pipeline]; known && ev.Seq <= last {
			continue
		}
		data, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		id := strconv.FormatInt(ev.Seq, 10)
		if st.only == "" {
			id = ev.Pipeline + ":" + id
		}
		if _, err := fmt.Fprintf(st.w, "id: %s\ndata: %s\n\n", id, data); err != nil {
			return err
		}
		st.last[ev.Pipeline] = ev.Seq
	}
	return st.rc.Flush()
}

func wantsStream(r *http.Request) bool {
	for part := range strings.SplitSeq(r.Header.Get("Accept"), ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == "text/event-stream" {
			return true
		}
	}
	return false
}

func cursorParam(v, name string) (int64, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, errorf(http.StatusBadRequest, CodeInvalid, name+" must be an event seq (a whole number, 0 or more), not "+strconv.Quote(v))
	}
	return n, nil
}
