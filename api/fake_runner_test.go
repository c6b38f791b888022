package api_test

import (
	"context"
	"slices"
	"sync"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
)

// fakeRunner is a TEST DOUBLE of the deployment runner behind
// api.Deployments. It keeps pipelines and events in maps, records what the
// API asked of it and returns the errors a test sets, so these tests check
// the HTTP edge alone: status codes, bodies, auth, streams. The real runner
// (engine, store, executor) is tested in package runner.
type fakeRunner struct {
	mu        sync.Mutex
	pipelines map[string]*store.Pipeline // by id; Tenant scopes them
	events    map[string][]store.Event   // by pipeline id
	subs      []subscriber

	// Results and errors to return.
	startResult api.StartResult
	err         error // returned by every call when set

	// What the API asked.
	started    []api.StartRequest
	redeployed []api.RedeployRequest
	acted      []pipeline.Event
	by         []api.Principal
	filters    []store.Filter

	// subscribed receives a value after each Subscribe.
	subscribed chan struct{}
	// duringReplay, when set, runs inside the first Events call of a
	// stream: what a race between the replay and a new event looks like.
	duringReplay func()
}

type subscriber struct {
	ctx    context.Context
	tenant string
	ch     chan store.Event
}

var _ api.Deployments = (*fakeRunner)(nil)

func newFakeRunner() *fakeRunner {
	return &fakeRunner{
		pipelines:  map[string]*store.Pipeline{},
		events:     map[string][]store.Event{},
		subscribed: make(chan struct{}, 16),
	}
}

func (f *fakeRunner) add(p *store.Pipeline) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pipelines[p.ID] = p
}

// record stores an event (Seq must follow the last) without publishing it.
func (f *fakeRunner) record(ev store.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events[ev.Pipeline] = append(f.events[ev.Pipeline], ev)
}

// publish delivers ev to the subscribers of its tenant, as the runner does
// after appending it.
func (f *fakeRunner) publish(ev store.Event) {
	f.mu.Lock()
	subs := slices.Clone(f.subs)
	f.mu.Unlock()
	for _, s := range subs {
		if s.tenant == ev.Tenant && s.ctx.Err() == nil {
			select {
			case s.ch <- ev:
			case <-s.ctx.Done():
			}
		}
	}
}

func (f *fakeRunner) find(tenant, id string) (*store.Pipeline, error) {
	p, ok := f.pipelines[id]
	if !ok || p.Tenant != tenant {
		return nil, store.ErrNotFound
	}
	return p, nil
}

func (f *fakeRunner) Start(_ context.Context, p api.Principal, req api.StartRequest) (api.StartResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.started = append(f.started, req)
	f.by = append(f.by, p)
	return f.startResult, f.err
}

func (f *fakeRunner) Restore(_ context.Context, p api.Principal, id string, req api.RestoreRequest) (api.StartResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.find(p.Tenant, id); err != nil {
		return api.StartResult{}, err
	}
	return f.startResult, f.err
}

func (f *fakeRunner) Redeploy(_ context.Context, p api.Principal, id string, req api.RedeployRequest) (api.StartResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return api.StartResult{}, f.err
	}
	if _, err := f.find(p.Tenant, id); err != nil {
		return api.StartResult{}, err
	}
	f.redeployed = append(f.redeployed, req)
	return f.startResult, nil
}

func (f *fakeRunner) Get(_ context.Context, tenant, id string) (*store.Pipeline, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	return f.find(tenant, id)
}

func (f *fakeRunner) List(_ context.Context, tenant string, flt store.Filter) ([]*store.Pipeline, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.filters = append(f.filters, flt)
	if f.err != nil {
		return nil, f.err
	}
	var out []*store.Pipeline
	for _, p := range f.pipelines {
		if p.Tenant == tenant {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b *store.Pipeline) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return out, nil
}

func (f *fakeRunner) Act(_ context.Context, p api.Principal, id string, ev pipeline.Event) (*store.Pipeline, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.find(p.Tenant, id); err != nil {
		return nil, err
	}
	f.acted = append(f.acted, ev)
	f.by = append(f.by, p)
	if f.err != nil {
		return nil, f.err
	}
	return f.pipelines[id], nil
}

func (f *fakeRunner) Events(_ context.Context, tenant, id string, after int64) ([]store.Event, error) {
	f.mu.Lock()
	hook := f.duringReplay
	f.duringReplay = nil
	f.mu.Unlock()
	if hook != nil {
		hook()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.find(tenant, id); err != nil {
		return nil, err
	}
	var out []store.Event
	for _, ev := range f.events[id] {
		if ev.Seq > after {
			out = append(out, ev)
		}
	}
	return out, nil
}

func (f *fakeRunner) Subscribe(ctx context.Context, tenant string) <-chan store.Event {
	ch := make(chan store.Event, 16)
	f.mu.Lock()
	f.subs = append(f.subs, subscriber{ctx: ctx, tenant: tenant, ch: ch})
	f.mu.Unlock()
	f.subscribed <- struct{}{}
	return ch
}
