package client_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sortie-cd/sortie/client"
	"github.com/sortie-cd/sortie/store"
)

func TestEventReader(t *testing.T) {
	in := "retry: 1500\n\n: heartbeat\n\nid: 1\ndata: {\"a\":1}\n\nid: 2\r\nevent: x\r\ndata: line1\r\ndata:line2\r\n\r\nid: 3\ndata: cut short"
	r := client.NewEventReader(strings.NewReader(in))
	var got []client.Message
	for {
		m, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, m)
	}
	want := []client.Message{
		{Retry: 1500 * time.Millisecond},
		{ID: "1", Data: `{"a":1}`},
		{ID: "2", Event: "x", Data: "line1\nline2"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("messages (-want +got):\n%s", d)
	}
}

// The server's streams do not drop by themselves, so this test serves the
// event-stream protocol from a handler that cuts the first connection after
// two events, to check what the client does on reconnecting. The real
// server's streams are followed in the cli package's end-to-end tests.
func TestFollowReconnectsWithLastEventID(t *testing.T) {
	var (
		mu      sync.Mutex
		lastIDs []string
		conns   int
	)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth/token", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"access_token":"t","token_type":"Bearer","expires_in":900}`)
	})
	mux.HandleFunc("GET /api/v1/pipelines/p1/events", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		conns++
		n := conns
		lastIDs = append(lastIDs, r.Header.Get("Last-Event-ID"))
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "retry: 10\n\n")
		from := 1
		if n > 1 {
			fmt.Sscan(r.Header.Get("Last-Event-ID"), &from)
			from++
		}
		for seq := from; seq < from+2; seq++ {
			fmt.Fprintf(w, "id: %d\ndata: {\"pipeline\":\"p1\",\"seq\":%d,\"type\":\"status\"}\n\n", seq, seq)
		}
		w.(http.Flusher).Flush()
		// Returning ends the response: the connection "drops".
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	c, _ := client.New(client.Options{Server: srv.URL, ClientID: "id", ClientSecret: "secret"})
	var seqs []int64
	reconnects := 0
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := c.FollowPipeline(ctx, "p1", 0, client.FollowOptions{OnReconnect: func(error) { reconnects++ }}, func(ev store.Event) error {
		seqs = append(seqs, ev.Seq)
		if ev.Seq == 5 {
			return client.ErrStop
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]int64{1, 2, 3, 4, 5}, seqs); d != "" {
		t.Errorf("events (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"", "2", "4"}, lastIDs); d != "" {
		t.Errorf("Last-Event-ID per connection (-want +got):\n%s", d)
	}
	if reconnects != 2 {
		t.Errorf("reconnects: %d", reconnects)
	}
}

func TestFollowStopsOnRefusal(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth/token", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"access_token":"t","expires_in":900}`)
	})
	mux.HandleFunc("GET /api/v1/pipelines/gone/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(404)
		fmt.Fprint(w, `{"error_id":"E1","errors":[{"message":"not found","code":"not_found"}]}`)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c, _ := client.New(client.Options{Server: srv.URL, ClientID: "id", ClientSecret: "secret"})
	err := c.FollowPipeline(context.Background(), "gone", 0, client.FollowOptions{}, func(store.Event) error { return nil })
	if client.StatusOf(err) != 404 || err.Error() != "not found" {
		t.Errorf("err = %v", err)
	}
}
