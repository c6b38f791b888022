package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/store"
)

// ErrStop, returned by a Follow callback, ends the stream without an error.
var ErrStop = errors.New("stop following")

// maxEventLine bounds one line of an event stream.
const maxEventLine = 4 << 20

// Reconnection delays: the server's retry: field (or defaultRetry) after a
// stream that delivered events, doubling up to maxRetry while reconnecting
// fails, with jitter.
const (
	defaultRetry = 2 * time.Second
	maxRetry     = 30 * time.Second
)

// FollowOptions tune a Follow call.
type FollowOptions struct {
	// OnReconnect, when not nil, is called before each reconnection with
	// the error that ended the previous connection.
	OnReconnect func(err error)
}

// FollowPipeline streams a pipeline's events with a seq above after: first
// the stored ones, then each new one as it is recorded. When the connection
// drops it reconnects with Last-Event-ID, so no event is lost or repeated.
// It returns when fn returns an error (nil for ErrStop), ctx ends (ctx's
// error) or the server refuses the stream (an *Error).
func (c *Client) FollowPipeline(ctx context.Context, id string, after int64, o FollowOptions, fn func(store.Event) error) error {
	last := ""
	if after > 0 {
		last = strconv.FormatInt(after, 10)
	}
	return c.follow(ctx, api.Prefix+"/pipelines/"+url.PathEscape(id)+"/events", last, o, fn)
}

// FollowTenant streams every event of the caller's tenant from now on (or,
// with lastEventID "pipeline:seq" as a previous stream sent it, from just
// after that event), reconnecting as FollowPipeline does.
func (c *Client) FollowTenant(ctx context.Context, lastEventID string, o FollowOptions, fn func(store.Event) error) error {
	return c.follow(ctx, api.Prefix+"/events", lastEventID, o, fn)
}

func (c *Client) follow(ctx context.Context, path, last string, o FollowOptions, fn func(store.Event) error) error {
	retry := defaultRetry
	failures := 0
	for {
		delivered, serverRetry, err := c.streamOnce(ctx, path, &last, fn)
		if serverRetry > 0 {
			retry = serverRetry
		}
		switch {
		case errors.Is(err, ErrStop):
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil && !retryable(err):
			return err
		}
		if delivered {
			failures = 0
		} else {
			failures++
		}
		if err == nil {
			err = io.EOF
		}
		if o.OnReconnect != nil {
			o.OnReconnect(err)
		}
		wait := retry << min(failures, 5)
		wait = min(wait, maxRetry)
		wait += rand.N(wait/4 + 1)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// callbackError marks an error the callback returned: it ends the stream.
type callbackError struct{ err error }

func (e callbackError) Error() string { return e.err.Error() }
func (e callbackError) Unwrap() error { return e.err }

// retryable reports whether following should reconnect after err: yes for
// a dropped connection and for server-side trouble, no for a refusal.
func retryable(err error) bool {
	var cb callbackError
	if errors.As(err, &cb) {
		return false
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Status >= 500 || e.Status == http.StatusTooManyRequests
	}
	return true
}

// streamOnce reads one connection's events, updating *last with each id.
func (c *Client) streamOnce(ctx context.Context, path string, last *string, fn func(store.Event) error) (delivered bool, retry time.Duration, err error) {
	h := http.Header{"Accept": {"text/event-stream"}}
	if *last != "" {
		h.Set("Last-Event-ID", *last)
	}
	resp, err := c.do(ctx, http.MethodGet, path, nil, nil, h)
	if err != nil {
		return false, 0, err
	}
	defer resp.Body.Close()
	if mt := resp.Header.Get("Content-Type"); !strings.HasPrefix(mt, "text/event-stream") {
		return false, 0, fmt.Errorf("GET %s answered %q, not an event stream", path, mt)
	}
	r := NewEventReader(resp.Body)
	for {
		msg, err := r.Next()
		if msg.Retry > 0 {
			retry = msg.Retry
		}
		if err != nil {
			return delivered, retry, err
		}
		if msg.Data == "" {
			continue
		}
		var ev store.Event
		if err := json.Unmarshal([]byte(msg.Data), &ev); err != nil {
			return delivered, retry, fmt.Errorf("event %s is not an event: %w", msg.ID, err)
		}
		if err := fn(ev); err != nil {
			return delivered, retry, callbackError{err}
		}
		delivered = true
		if msg.ID != "" {
			*last = msg.ID
		}
	}
}

// Message is one Server-Sent Event.
type Message struct {
	ID    string
	Event string
	Data  string
	// Retry is the reconnection time the server asked for, if it did.
	Retry time.Duration
}

// EventReader parses a text/event-stream (the WHATWG HTML "server-sent
// events" format): fields id, event, data (lines joined by \n) and retry;
// comment lines (":") ignored; an empty line ends a message.
type EventReader struct {
	sc *bufio.Scanner
}

// NewEventReader reads messages from r.
func NewEventReader(r io.Reader) *EventReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxEventLine)
	return &EventReader{sc: sc}
}

// Next returns the next message. A message with neither data nor id (a
// lone retry: field) is returned too, so its Retry is seen. At the end of
// the stream it returns io.EOF (a message cut short is dropped).
func (r *EventReader) Next() (Message, error) {
	var (
		m       Message
		data    []string
		hasData bool
		seen    bool
	)
	for r.sc.Scan() {
		line := strings.TrimSuffix(r.sc.Text(), "\r")
		if line == "" {
			if !seen {
				continue
			}
			if hasData {
				m.Data = strings.Join(data, "\n")
			}
			return m, nil
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			if !strings.ContainsRune(value, 0) {
				m.ID, seen = value, true
			}
		case "event":
			m.Event, seen = value, true
		case "data":
			data, hasData, seen = append(data, value), true, true
		case "retry":
			if n, err := strconv.Atoi(value); err == nil && n >= 0 {
				m.Retry, seen = time.Duration(n)*time.Millisecond, true
			}
		}
	}
	if err := r.sc.Err(); err != nil {
		return Message{}, err
	}
	return Message{}, io.EOF
}
