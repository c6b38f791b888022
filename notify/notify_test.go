package notify_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sortie-cd/sortie/notify"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/secrets"
	"github.com/sortie-cd/sortie/store"
	"github.com/sortie-cd/sortie/store/sqlite"
	"github.com/sortie-cd/sortie/store/storetest"
)

// fakeClock fires its timers when the test advances it.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
	armed  chan time.Duration
}

type fakeTimer struct {
	c       *fakeClock
	at      time.Time
	f       func()
	stopped bool
}

func newClock() *fakeClock {
	return &fakeClock{now: time.Now().UTC().Truncate(time.Second), armed: make(chan time.Duration, 100)}
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *fakeClock) AfterFunc(d time.Duration, f func()) notify.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	c.armed <- d
	return t
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.stopped
	t.stopped = true
	return was
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []func()
	for _, t := range c.timers {
		if !t.stopped && !t.at.After(c.now) {
			t.stopped = true
			due = append(due, t.f)
		}
	}
	c.mu.Unlock()
	for _, f := range due {
		f()
	}
}

// receiver is a real HTTP receiver on loopback recording what it got.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []map[string]any
	heads  []http.Header
	got    chan struct{}
	status func(n int) int // the answer to the nth request (from 1)
}

func newReceiver(t *testing.T, status func(n int) int) *receiver {
	rc := &receiver{got: make(chan struct{}, 100), status: status}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Errorf("receiver got a body that is not JSON: %s", b)
		}
		rc.mu.Lock()
		rc.bodies = append(rc.bodies, v)
		rc.heads = append(rc.heads, r.Header.Clone())
		n := len(rc.bodies)
		rc.mu.Unlock()
		code := http.StatusOK
		if rc.status != nil {
			code = rc.status(n)
		}
		w.WriteHeader(code)
		io.WriteString(w, "answer")
		rc.got <- struct{}{}
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) requests() ([]map[string]any, []http.Header) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]map[string]any(nil), rc.bodies...), append([]http.Header(nil), rc.heads...)
}

type fixture struct {
	st      *sqlite.Store
	path    string
	secrets *secrets.Service
	clock   *fakeClock
	links   *notify.Links
}

func newFixture(t *testing.T) *fixture {
	dir := t.TempDir()
	f := &fixture{path: filepath.Join(dir, "sortie.db"), clock: newClock()}
	f.st = openStore(t, f.path)
	sec, err := secrets.New(t.Context(), secrets.Options{Store: f.st, KeyPath: filepath.Join(dir, "master.key")})
	if err != nil {
		t.Fatal(err)
	}
	f.secrets = sec
	f.links = notify.NewLinks([]byte("0123456789abcdef0123456789abcdef"), "https://sortie.example.com", time.Hour)
	return f
}

func openStore(t *testing.T, path string) *sqlite.Store {
	st, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func (f *fixture) notifier(st notify.Store) *notify.Notifier {
	return notify.New(notify.Options{Store: st, Secrets: f.secrets, Clock: f.clock, Links: f.links,
		ConsoleURL: "https://sortie.example.com", Backoff: time.Minute, MaxAttempts: 3})
}

func (f *fixture) subscribe(t *testing.T, sub store.Subscription) {
	t.Helper()
	if sub.Tenant == "" {
		sub.Tenant = store.DefaultTenant
	}
	if _, err := notify.ParseSink(sub.SinkType, sub.Sink); err != nil {
		t.Fatalf("sink of %s: %v", sub.ID, err)
	}
	if err := f.st.CreateSubscription(t.Context(), sub); err != nil {
		t.Fatal(err)
	}
}

func change(c pipeline.Change) store.Event {
	b, _ := json.Marshal(c)
	return store.Event{Type: "status", Data: b}
}

// waitingPipeline stores a pipeline of web that started and whose prod
// target waits for approval at step "pause-2".
func (f *fixture) waitingPipeline(t *testing.T, id string) {
	t.Helper()
	createWaiting(t, f.st, id, f.clock.Now())
}

// createWaiting stores in st the pipeline waitingPipeline describes.
func createWaiting(t *testing.T, st store.Store, id string, at time.Time) {
	t.Helper()
	p := storetest.CanaryPipeline(store.DefaultTenant, id, "web", at)
	if err := st.CreatePipeline(t.Context(), p, nil, []store.Event{
		change(pipeline.Change{From: pipeline.StatusQueued, To: pipeline.StatusRunning}),
		{Type: "command", Data: json.RawMessage(`{"CommandID": "c1"}`)},
		change(pipeline.Change{Target: "staging", Step: "pause-2", From: pipeline.StatusRunning, To: pipeline.StatusAwaitingApproval, Message: "waiting for approval"}),
	}); err != nil {
		t.Fatal(err)
	}
}

func deliveries(t *testing.T, st store.Store) []store.OutboxMessage {
	t.Helper()
	list, err := st.ListDeliveries(t.Context(), store.DefaultTenant, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// TestSlackAndWebhookReceive: a Slack-format sink (incoming webhook URL
// in a secret) and a generic JSON sink get the right messages, the one
// about a wait with approve and roll back links; a restarted notifier
// makes no message twice.
func TestSlackAndWebhookReceive(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	slack, generic := newReceiver(t, nil), newReceiver(t, nil)
	slackURL := slack.URL + "/services/T0001/B0001/s3cr3tT0k3n"
	if _, err := f.secrets.Put(ctx, store.DefaultTenant, "slack-url", slackURL, nil); err != nil {
		t.Fatal(err)
	}
	f.subscribe(t, store.Subscription{ID: "ops", Application: "web", Target: "staging", Events: []string{notify.EventWaitingForApproval},
		SinkType: notify.SinkSlack, Sink: json.RawMessage(`{"urlSecret": "slack-url"}`)})
	f.subscribe(t, store.Subscription{ID: "audit", Events: []string{notify.EventStarted, notify.EventFailed},
		SinkType: notify.SinkWebhook, Sink: json.RawMessage(`{"url": "` + generic.URL + `/hook"}`)})
	f.subscribe(t, store.Subscription{ID: "other-app", Application: "api", Events: notify.Events,
		SinkType: notify.SinkWebhook, Sink: json.RawMessage(`{"url": "` + generic.URL + `/other"}`)})
	f.waitingPipeline(t, "p1")

	n := f.notifier(f.st)
	n.CatchUp(ctx)
	n.DeliverDue(ctx)

	sb, _ := slack.requests()
	if len(sb) != 1 {
		t.Fatalf("Slack got %d messages, want 1: %v", len(sb), sb)
	}
	text, _ := sb[0]["text"].(string)
	if !strings.Contains(text, "web") || !strings.Contains(text, "p1") || !strings.Contains(text, "staging") || !strings.Contains(text, "waiting for approval") {
		t.Errorf("Slack text = %q, want the application, pipeline, target and wait", text)
	}
	var buttons []string
	blocks, _ := sb[0]["blocks"].([]any)
	for _, b := range blocks {
		bm, _ := b.(map[string]any)
		if bm["type"] != "actions" {
			continue
		}
		for _, e := range bm["elements"].([]any) {
			em := e.(map[string]any)
			buttons = append(buttons, em["text"].(map[string]any)["text"].(string)+" "+em["url"].(string))
		}
	}
	if len(buttons) != 3 || !strings.HasPrefix(buttons[0], "Approve https://sortie.example.com/links/") ||
		!strings.HasPrefix(buttons[1], "Roll back https://sortie.example.com/links/") || buttons[2] != "Open https://sortie.example.com/pipelines/p1" {
		t.Fatalf("Slack buttons = %q", buttons)
	}
	token := strings.TrimPrefix(strings.Fields(buttons[0])[1], "https://sortie.example.com/links/")
	link, err := f.links.Verify(token, f.clock.Now())
	if err != nil {
		t.Fatalf("the approve link does not verify: %v", err)
	}
	if link.Tenant != store.DefaultTenant || link.Pipeline != "p1" || link.Target != "staging" || link.Step != "pause-2" || link.Action != notify.ActionApprove {
		t.Errorf("approve link bound to %+v", link)
	}

	gb, gh := generic.requests()
	if len(gb) != 1 || gb[0]["event"] != notify.EventStarted || gb[0]["pipeline"] != "p1" || gb[0]["application"] != "web" || gh[0].Get("Content-Type") != "application/json" {
		t.Fatalf("generic sink got %v, want one started message of p1", gb)
	}
	for _, d := range deliveries(t, f.st) {
		if d.Status != store.OutboxSent || d.Attempts != 1 {
			t.Errorf("delivery %+v, want sent in one attempt", d)
		}
	}

	// A restart: a new notifier on a reopened store makes nothing again,
	// and a new event is notified once.
	st2 := openStore(t, f.path)
	n2 := f.notifier(st2)
	n2.CatchUp(ctx)
	n2.DeliverDue(ctx)
	if sb, _ := slack.requests(); len(sb) != 1 {
		t.Errorf("after a restart Slack has %d messages, want still 1", len(sb))
	}
	p, err := st2.GetPipeline(ctx, store.DefaultTenant, "p1")
	if err != nil {
		t.Fatal(err)
	}
	if err := st2.SavePipeline(ctx, p, []store.Event{change(pipeline.Change{From: pipeline.StatusRunning, To: pipeline.StatusFailed, Message: "boom"})}); err != nil {
		t.Fatal(err)
	}
	n2.CatchUp(ctx)
	n2.CatchUp(ctx)
	n2.DeliverDue(ctx)
	gb, _ = generic.requests()
	if len(gb) != 2 || gb[1]["event"] != notify.EventFailed || !strings.Contains(gb[1]["text"].(string), "boom") {
		t.Errorf("generic sink after the failure got %v, want the failed message once", gb)
	}
}

// TestFailingSinkRetried: a sink answering 503 is tried again after the
// backoff, on the clock's timer (the Run loop, no sleep); the failures and
// their reason are in the deliveries, the secret URL masked; a sink that
// never recovers is given up after MaxAttempts, visibly.
func TestFailingSinkRetried(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	flaky := newReceiver(t, func(n int) int {
		if n <= 1 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	dead := newReceiver(t, func(int) int { return http.StatusBadGateway })
	secretURL := flaky.URL + "/hooks/tok-9f8e7d6c5b4a"
	if _, err := f.secrets.Put(ctx, store.DefaultTenant, "flaky-url", secretURL, nil); err != nil {
		t.Fatal(err)
	}
	f.subscribe(t, store.Subscription{ID: "flaky", Events: []string{notify.EventStarted}, SinkType: notify.SinkTeams,
		Sink: json.RawMessage(`{"urlSecret": "flaky-url"}`)})
	f.subscribe(t, store.Subscription{ID: "dead", Events: []string{notify.EventStarted}, SinkType: notify.SinkCloudEvents,
		Sink: json.RawMessage(`{"url": "` + dead.URL + `", "mode": "structured"}`)})
	f.waitingPipeline(t, "p1")

	feed := make(chan store.Event)
	recorded := make(chan store.OutboxMessage, 10)
	n := notify.New(notify.Options{Store: f.st, Secrets: f.secrets, Clock: f.clock, Backoff: time.Minute, MaxAttempts: 3,
		Recorded: func(m store.OutboxMessage) { recorded <- m }})
	records := func(k int) {
		t.Helper()
		for range k {
			select {
			case <-recorded:
			case <-time.After(10 * time.Second):
				t.Fatal("no delivery recorded")
			}
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.Run(ctx, func(ctx context.Context) <-chan store.Event { return feed })
	}()
	records(2)
	// The loop arms its timer at the next attempt: a minute on.
	waitArmed(t, f.clock, time.Minute)
	byID := func() map[string]store.OutboxMessage {
		out := map[string]store.OutboxMessage{}
		for _, d := range deliveries(t, f.st) {
			out[d.Subscription] = d
		}
		return out
	}
	d := byID()
	if d["flaky"].Status != store.OutboxPending || d["flaky"].Attempts != 1 || !strings.Contains(d["flaky"].LastError, "503") {
		t.Errorf("flaky after its first attempt: %+v, want pending with the 503", d["flaky"])
	}
	if strings.Contains(d["flaky"].LastError, "tok-9f8e7d6c5b4a") {
		t.Errorf("the delivery record shows the secret URL: %q", d["flaky"].LastError)
	}
	f.clock.Advance(time.Minute)
	records(2)
	waitArmed(t, f.clock, 2*time.Minute)
	f.clock.Advance(2 * time.Minute)
	records(1)
	cancel()
	<-done

	d = byID()
	if d["flaky"].Status != store.OutboxSent || d["flaky"].Attempts != 2 {
		t.Errorf("flaky: %+v, want sent at the second attempt", d["flaky"])
	}
	if d["dead"].Status != store.OutboxFailed || d["dead"].Attempts != 3 || !strings.Contains(d["dead"].LastError, "502") {
		t.Errorf("dead: %+v, want failed after 3 attempts with the 502", d["dead"])
	}
	bodies, heads := dead.requests()
	if heads[0].Get("Content-Type") != "application/cloudevents+json" || bodies[0]["specversion"] != "1.0" ||
		bodies[0]["type"] != "dev.sortie.pipeline.started" || bodies[0]["subject"] != "p1" {
		t.Errorf("structured CloudEvent: %v %v", heads[0], bodies[0])
	}
	tb, _ := flaky.requests()
	if tb[0]["type"] != "message" || tb[0]["attachments"] == nil {
		t.Errorf("Teams message: %v", tb[0])
	}
}

// waitArmed waits until the delivery loop armed a timer for d from now.
func waitArmed(t *testing.T, c *fakeClock, d time.Duration) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case got := <-c.armed:
			if got == d {
				return
			}
		case <-timeout:
			t.Fatalf("no timer armed for %v", d)
		}
	}
}

func TestLinks(t *testing.T) {
	links := notify.NewLinks([]byte("key-one-key-one-key-one-key-one!"), "https://s.example.com/", time.Hour)
	now := time.Now()
	url := links.New("main", "p1", "prod", "pause-2", notify.ActionApprove, now)
	token := strings.TrimPrefix(url, "https://s.example.com"+notify.LinkPath)
	if token == url {
		t.Fatalf("link %q is not under the base URL", url)
	}
	link, err := links.Verify(token, now.Add(59*time.Minute))
	if err != nil || link.Pipeline != "p1" || link.Step != "pause-2" || link.Nonce == "" {
		t.Errorf("Verify = %+v, %v", link, err)
	}
	if _, err := links.Verify(token, now.Add(time.Hour+time.Second)); err != notify.ErrLinkExpired {
		t.Errorf("Verify after expiry: %v, want ErrLinkExpired", err)
	}
	other := notify.NewLinks([]byte("key-two-key-two-key-two-key-two!"), "https://s.example.com", time.Hour)
	if _, err := other.Verify(token, now); err != notify.ErrLinkInvalid {
		t.Errorf("Verify under another key: %v, want ErrLinkInvalid", err)
	}
	// Rebinding the link to another step breaks its MAC.
	link.Step = "pause-9"
	forged := other.Sign(link)
	body, _, _ := strings.Cut(forged, ".")
	_, sig, _ := strings.Cut(token, ".")
	if _, err := links.Verify(body+"."+sig, now); err != notify.ErrLinkInvalid {
		t.Errorf("Verify of a changed link: %v, want ErrLinkInvalid", err)
	}
}

func TestParseSink(t *testing.T) {
	for _, tc := range []struct {
		typ, sink, want string
	}{
		{notify.SinkSlack, `{"url": "https://hooks.slack.com/services/T/B/x"}`, "embeds its token"},
		{notify.SinkSlack, `{"tokenSecret": "bot"}`, "needs the channel"},
		{notify.SinkSlack, `{}`, "needs urlSecret"},
		{notify.SinkTeams, `{}`, "needs urlSecret"},
		{notify.SinkWebhook, `{}`, "needs url or urlSecret"},
		{notify.SinkWebhook, `{"url": "ftp://x"}`, "not an absolute http"},
		{notify.SinkWebhook, `{"url": "https://u:p@x.example.com"}`, "credentials in a URL"},
		{notify.SinkWebhook, `{"url": "https://x.example.com/hook?token=abc"}`, "a query may carry a token"},
		{notify.SinkWebhook, `{"url": "https://x.example.com", "colour": "red"}`, "unknown field"},
		{notify.SinkCloudEvents, `{"url": "https://x.example.com", "mode": "binaryish"}`, "use binary or structured"},
		{"pager", `{}`, "sink type"},
		{notify.SinkSlack, `{"tokenSecret": "bot", "channel": "#ops"}`, ""},
		{notify.SinkCloudEvents, `{"urlSecret": "ce", "authSecret": "auth"}`, ""},
	} {
		_, err := notify.ParseSink(tc.typ, json.RawMessage(tc.sink))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s %s: %v", tc.typ, tc.sink, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s %s: %v, want %q", tc.typ, tc.sink, err, tc.want)
		}
	}
}

// TestCatchUpReadsTheWholeBacklog: a backlog longer than a batch is read
// to its end in one CatchUp.
func TestCatchUpReadsTheWholeBacklog(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	generic := newReceiver(t, nil)
	f.subscribe(t, store.Subscription{ID: "audit", Events: []string{notify.EventStarted},
		SinkType: notify.SinkWebhook, Sink: json.RawMessage(`{"url": "` + generic.URL + `"}`)})
	for _, id := range []string{"p1", "p2", "p3"} {
		f.waitingPipeline(t, id)
	}
	n := notify.New(notify.Options{Store: f.st, Clock: f.clock, Batch: 2})
	n.CatchUp(ctx)
	n.DeliverDue(ctx)
	if got, _ := generic.requests(); len(got) != 3 {
		t.Errorf("the sink got %d messages, want one started per pipeline: %v", len(got), got)
	}
}

// TestRestrictedSecretGoesNowhereElse: a sink whose URL is a secret
// restricted to other hosts is never called; the delivery fails at once,
// saying why, and is not retried.
func TestRestrictedSecretGoesNowhereElse(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	rc := newReceiver(t, nil)
	if _, err := f.secrets.Put(ctx, store.DefaultTenant, "hook-url", rc.URL+"/hooks/tok-1a2b3c", []string{"hooks.example.com"}); err != nil {
		t.Fatal(err)
	}
	f.subscribe(t, store.Subscription{ID: "restricted", Events: []string{notify.EventStarted}, SinkType: notify.SinkWebhook,
		Sink: json.RawMessage(`{"urlSecret": "hook-url"}`)})
	f.waitingPipeline(t, "p1")
	recorded := make(chan store.OutboxMessage, 10)
	n := notify.New(notify.Options{Store: f.st, Secrets: f.secrets, Clock: f.clock, Recorded: func(m store.OutboxMessage) { recorded <- m }})
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.Run(ctx, func(ctx context.Context) <-chan store.Event { return make(chan store.Event) })
	}()
	select {
	case m := <-recorded:
		if m.Status != store.OutboxFailed || m.Attempts != 1 || !strings.Contains(m.LastError, "not an allowed host of secret hook-url") || strings.Contains(m.LastError, "tok-1a2b3c") {
			t.Errorf("delivery with a restricted secret: %+v, want failed at once naming the secret, not its value", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery recorded")
	}
	cancel()
	<-done
	if bodies, _ := rc.requests(); len(bodies) != 0 {
		t.Errorf("the receiver got %d calls carrying a secret restricted to another host", len(bodies))
	}
}
