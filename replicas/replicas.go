package replicas

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sortie-cd/sortie/agent"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/runner"
	"github.com/sortie-cd/sortie/store"
	"github.com/sortie-cd/sortie/store/postgres"
)

// DefaultRecordEvery is how often a server records the agent streams it
// holds (and at each connect and disconnect); a record older than
// MissedRecords intervals is of a server presumed dead.
const DefaultRecordEvery = 10 * time.Second

// MissedRecords is how many record intervals a stream's record stays good.
const MissedRecords = 3

// Options configure a Node.
type Options struct {
	// Store is the shared database; required.
	Store *postgres.Store
	// Hub is this server's end of the agent streams; required.
	Hub *agent.Hub
	// Replica names this server among the others; empty means the host
	// name and a random suffix (a restarted server is a new replica).
	Replica string
	// RecordEvery: zero means DefaultRecordEvery.
	RecordEvery time.Duration
	// Auth, when not nil, applies the revocations other servers send
	// (see Peers).
	Auth Auth
	// Sealer seals the HTTP calls relayed through an agent whose stream
	// another server holds, and their answers (see Relay); nil: such calls
	// fail.
	Sealer Sealer
	// Log: nil discards.
	Log *slog.Logger
}

// Node is one server's part in a group of servers sharing one PostgreSQL
// database. It is the runner's executor for agents' accounts (a command
// goes to whichever server holds the agent's stream, the result comes
// back here), delivers the commands of other servers to the agents
// connected here, and feeds the runner the events other servers saved.
type Node struct {
	st     *postgres.Store
	hub    *agent.Hub
	auth   Auth
	sealer Sealer
	id     string
	every  time.Duration
	log    *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu         sync.Mutex
	closed     bool
	waiters    map[cmdKey]chan struct{}   // this server's Execute calls, by command
	deliveries map[cmdKey]*delivery       // other servers' commands delivered here
	held       map[cmdKey]agent.Connected // agents connected here, by tenant and agent id (cmdKey.id)

	relayWaiters map[cmdKey]chan struct{}      // this server's routed relay calls
	relaying     map[cmdKey]context.CancelFunc // other servers' calls sent from here

	feed *feed
}

type cmdKey struct{ tenant, id string }

type delivery struct{ stop context.CancelFunc }

var _ runner.Executor = (*Node)(nil)

// Start listens on the database's channels and begins recording the
// agent streams held here; Close stops it.
func Start(ctx context.Context, o Options) (*Node, error) {
	if o.Store == nil || o.Hub == nil {
		return nil, errors.New("replicas: Options need Store and Hub")
	}
	n := &Node{st: o.Store, hub: o.Hub, auth: o.Auth, sealer: o.Sealer, id: o.Replica, every: o.RecordEvery, log: o.Log,
		waiters: map[cmdKey]chan struct{}{}, deliveries: map[cmdKey]*delivery{}, held: map[cmdKey]agent.Connected{}, feed: newFeed(),
		relayWaiters: map[cmdKey]chan struct{}{}, relaying: map[cmdKey]context.CancelFunc{}}
	if n.id == "" {
		n.id = NewReplicaID()
	}
	if n.every <= 0 {
		n.every = DefaultRecordEvery
	}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	n.log = n.log.With("replica", n.id)
	n.ctx, n.cancel = context.WithCancel(context.Background())
	channels := []string{postgres.ChannelEvents, postgres.ChannelCommands, postgres.ChannelResults, postgres.ChannelRevocations,
		postgres.ChannelRelays, postgres.ChannelRelayAnswers, postgres.ChannelStreams}
	if err := n.st.Listen(n.ctx, channels, n.notified, n.lost); err != nil {
		n.cancel()
		return nil, fmt.Errorf("replicas: %w", err)
	}
	n.wg.Go(n.record)
	return n, nil
}

// ID is this server's replica name.
func (n *Node) ID() string { return n.id }

// Close stops listening and delivering, and forgets the streams held
// here. Commands delivered here go on running on their agents: the server
// their agent reconnects to delivers them again.
func (n *Node) Close() {
	n.cancel()
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	n.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.st.PutAgentStreams(ctx, n.id, nil); err != nil {
		n.log.Warn("forget the agent streams held here", "err", err)
	}
	n.feed.close()
}

// NewReplicaID is a replica name: the host name and a random suffix (a
// restarted server is a new replica).
func NewReplicaID() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	if host == "" {
		host = "sortie"
	}
	return host + "-" + hex.EncodeToString(b)
}

// notified handles one notification, on the listener's goroutine: it
// only wakes, queues or starts goroutines.
func (n *Node) notified(m postgres.Notification) {
	if m.Channel == postgres.ChannelRevocations {
		n.revoked(m.Payload)
		return
	}
	f := strings.Fields(m.Payload)
	switch {
	case m.Channel == postgres.ChannelEvents && len(f) == 4:
		first, err1 := strconv.ParseInt(f[2], 10, 64)
		last, err2 := strconv.ParseInt(f[3], 10, 64)
		if err1 == nil && err2 == nil {
			n.feed.push(runner.Saved{Tenant: f[0], Pipeline: f[1], First: first, Last: last})
		}
	case m.Channel == postgres.ChannelCommands && len(f) == 3:
		tenant, agentID, id := f[0], f[1], f[2]
		if n.hub.HasAccount(tenant, agentID) || n.delivering(tenant, id) {
			n.spawn(func() { n.consider(tenant, id) })
		}
	case m.Channel == postgres.ChannelRelays && (len(f) == 3 || len(f) == 4 && f[3] == "gone"):
		n.relayNoted(f[0], f[1], f[2], len(f) == 4)
	case m.Channel == postgres.ChannelStreams:
		// A routed call waiting checks that its stream is still there.
		n.mu.Lock()
		for _, w := range n.relayWaiters {
			wake(w)
		}
		n.mu.Unlock()
	case m.Channel == postgres.ChannelRelayAnswers && len(f) == 3:
		if f[0] == n.id {
			n.mu.Lock()
			if w := n.relayWaiters[cmdKey{f[1], f[2]}]; w != nil {
				wake(w)
			}
			n.mu.Unlock()
		}
	case m.Channel == postgres.ChannelResults && len(f) == 3:
		owner, tenant, id := f[0], f[1], f[2]
		k := cmdKey{tenant, id}
		n.mu.Lock()
		if owner == n.id {
			if w := n.waiters[k]; w != nil {
				wake(w)
			}
		}
		d := n.deliveries[k]
		n.mu.Unlock()
		if d != nil {
			// Answered, maybe through another server: a delivery still
			// waiting here checks whether it is done.
			n.spawn(func() { n.consider(tenant, id) })
		}
	}
}

// lost follows a reconnection of the listener: what its notifications
// would have said is read again.
func (n *Node) lost() {
	n.feed.push(runner.Saved{Lost: true})
	n.mu.Lock()
	for _, w := range n.waiters {
		wake(w)
	}
	for _, w := range n.relayWaiters {
		wake(w)
	}
	var agents []agent.Connected
	for _, a := range n.held {
		agents = append(agents, a)
	}
	n.mu.Unlock()
	for _, a := range agents {
		n.spawn(func() { n.deliverPending(a.Tenant, a.Info.ID) })
	}
}

// spawn runs f on a goroutine Close waits for, unless Close began.
func (n *Node) spawn(f func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.closed {
		n.wg.Go(f)
	}
}

func wake(w chan struct{}) {
	select {
	case w <- struct{}{}:
	default:
	}
}

func (n *Node) delivering(tenant, id string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.deliveries[cmdKey{tenant, id}] != nil
}

// HasAccount implements runner.Executor: the account's agent is connected
// here, or a server recorded its stream lately.
func (n *Node) HasAccount(tenant, account string) bool {
	if n.hub.HasAccount(tenant, account) {
		return true
	}
	ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
	defer cancel()
	streams, err := n.st.AgentStreams(ctx, tenant, account, MissedRecords*n.every)
	if err != nil {
		n.log.Warn("read the agent streams of other servers", "tenant", tenant, "agent", account, "err", err)
		return false
	}
	return len(streams) > 0
}

// List returns the agents of tenant connected to any server, by id.
func (n *Node) List(tenant string) []agent.Info {
	out := n.hub.List(tenant)
	ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
	defer cancel()
	streams, err := n.st.AgentStreams(ctx, tenant, "", MissedRecords*n.every)
	if err != nil {
		n.log.Warn("read the agent streams of other servers", "tenant", tenant, "err", err)
		return out
	}
	for _, s := range streams {
		if slices.ContainsFunc(out, func(i agent.Info) bool { return i.ID == s.Agent }) {
			continue
		}
		var info agent.Info
		if json.Unmarshal(s.Info, &info) == nil {
			out = append(out, info)
		}
	}
	slices.SortFunc(out, func(a, b agent.Info) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Execute implements runner.Executor for agents' accounts, on the
// pipeline's owner: the command is written for its agent, the server
// holding the agent's stream (this one or another) delivers it, and its
// reports and result come back through the database. The agent runs a
// command id once, so the command may be delivered again (its stream moved
// to another server) without running twice. When ctx ends first, the
// command is marked cancelled and the agent told to stop.
func (n *Node) Execute(ctx context.Context, job runner.Job) pipeline.CommandResult {
	c := job.Command
	log := n.log.With("agent", c.Account, "tenant", job.Tenant, "pipeline", c.Pipeline, "target", c.Target, "command", c.ID)
	payload, err := agent.EncodeJob(ctx, job)
	if err != nil {
		return pipeline.CommandResult{CommandID: c.ID, Message: fmt.Sprintf("encode command for agent %q: %v", c.Account, err)}
	}
	k := cmdKey{job.Tenant, c.ID}
	w := make(chan struct{}, 1)
	n.mu.Lock()
	n.waiters[k] = w
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		if n.waiters[k] == w {
			delete(n.waiters, k)
		}
		n.mu.Unlock()
	}()
	// giveUp marks the command cancelled, written or not (a write whose
	// answer ctx cut short may have been done), so that the agent stops it.
	giveUp := func(res pipeline.CommandResult) pipeline.CommandResult {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := n.st.CancelAgentCommand(cctx, job.Tenant, c.ID, n.id); err != nil {
			log.Warn("cancel the command", "err", err)
		}
		return res
	}
	deadline, _ := ctx.Deadline()
	log.Debug("sending a command to its agent")
	for {
		_, err := n.st.PutAgentCommand(ctx, postgres.AgentCommand{Tenant: job.Tenant, ID: c.ID, Agent: c.Account, Owner: n.id, Job: payload, Deadline: deadline})
		if err == nil {
			break
		}
		log.Warn("write the command for its agent; trying again", "err", err)
		select {
		case <-ctx.Done():
			return giveUp(pipeline.CommandResult{CommandID: c.ID, Message: fmt.Sprintf("command for agent %q not written: %v", c.Account, err), Transient: true})
		case <-time.After(time.Second):
		}
	}
	var after int64
	for {
		reports, result, owner, err := n.st.CommandProgress(ctx, job.Tenant, c.ID, after)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("read the command's progress", "err", err)
		case err != nil:
		case owner != n.id:
			// Another server took the pipeline over and waits for the
			// result itself; this one's transition would be refused.
			log.Info("the command is another server's now; no longer waiting")
			<-ctx.Done()
		default:
			for _, r := range reports {
				after = r.Seq
				if job.Report == nil {
					continue
				}
				ev := store.Event{Type: r.Type}
				if r.Data != nil {
					ev.Data = json.RawMessage(r.Data)
				}
				if err := job.Report(ctx, ev); err != nil {
					log.Warn("append the agent's report to the pipeline's log", "event", r.Type, "err", err)
				}
			}
			if result != nil {
				var res pipeline.CommandResult
				if err := json.Unmarshal(result, &res); err != nil {
					res = pipeline.CommandResult{Message: fmt.Sprintf("agent %q sent a result that does not decode: %v", c.Account, err)}
				}
				res.CommandID = c.ID
				if err := n.st.DeleteAgentCommand(context.WithoutCancel(ctx), job.Tenant, c.ID, n.id); err != nil {
					log.Warn("delete the answered command", "err", err)
				}
				return res
			}
		}
		select {
		case <-w:
		case <-ctx.Done():
			return giveUp(pipeline.CommandResult{CommandID: c.ID, Message: fmt.Sprintf("agent %q did not answer: %v", c.Account, context.Cause(ctx))})
		}
	}
}

// consider looks at one command another server (or this one) wrote for an
// agent connected here, or delivered here, and delivers it, stops
// delivering it, or cancels it on the agent.
func (n *Node) consider(tenant, id string) {
	ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
	defer cancel()
	c, err := n.st.GetAgentCommand(ctx, tenant, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		n.stopDelivery(tenant, id) // its owner took the result
		return
	case err != nil:
		if n.ctx.Err() == nil {
			n.log.Warn("read a command for an agent", "tenant", tenant, "command", id, "err", err)
		}
		return
	}
	n.handle(ctx, *c)
}

func (n *Node) handle(ctx context.Context, c postgres.AgentCommand) {
	switch {
	case c.Result != nil:
		n.stopDelivery(c.Tenant, c.ID)
	case c.Cancelled:
		n.stopDelivery(c.Tenant, c.ID)
		if n.hub.HasAccount(c.Tenant, c.Agent) {
			n.hub.Cancel(c.Tenant, c.Agent, c.ID)
			if err := n.st.DeleteCancelledCommand(ctx, c.Tenant, c.ID); err != nil {
				n.log.Warn("delete a cancelled command", "tenant", c.Tenant, "command", c.ID, "err", err)
			}
		}
	case n.hub.HasAccount(c.Tenant, c.Agent):
		n.deliver(c)
	}
}

// deliverPending delivers every unanswered command of an agent that just
// connected here (or after notifications were lost).
func (n *Node) deliverPending(tenant, agentID string) {
	ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
	defer cancel()
	cs, err := n.st.PendingAgentCommands(ctx, tenant, agentID)
	if err != nil {
		if n.ctx.Err() == nil {
			n.log.Warn("read the commands waiting for an agent", "tenant", tenant, "agent", agentID, "err", err)
		}
		return
	}
	for _, c := range cs {
		n.handle(ctx, c)
	}
	n.relayPending(ctx, tenant, agentID)
}

func (n *Node) stopDelivery(tenant, id string) {
	n.mu.Lock()
	d := n.deliveries[cmdKey{tenant, id}]
	n.mu.Unlock()
	if d != nil {
		d.stop()
	}
}

// deliver runs c on its agent, connected here, unless it is delivered
// here already, and writes its reports and result for the owner.
func (n *Node) deliver(c postgres.AgentCommand) {
	k := cmdKey{c.Tenant, c.ID}
	base, job, err := agent.DecodeJob(n.ctx, c.Job)
	if err != nil {
		n.log.Error("a command for an agent does not decode", "tenant", c.Tenant, "command", c.ID, "err", err)
		return
	}
	ctx, stop := context.WithCancel(base)
	if !c.Deadline.IsZero() {
		ctx, stop = context.WithDeadline(base, c.Deadline)
	}
	d := &delivery{stop: stop}
	n.mu.Lock()
	if n.deliveries[k] != nil || n.closed {
		n.mu.Unlock()
		stop()
		return
	}
	n.deliveries[k] = d
	n.wg.Add(1)
	n.mu.Unlock()
	job.Report = func(ctx context.Context, ev store.Event) error {
		return n.st.AddCommandReport(ctx, c.Tenant, c.ID, ev.Type, ev.Data)
	}
	go func() {
		defer n.wg.Done()
		defer func() {
			stop()
			n.mu.Lock()
			if n.deliveries[k] == d {
				delete(n.deliveries, k)
			}
			n.mu.Unlock()
		}()
		log := n.log.With("agent", c.Agent, "tenant", c.Tenant, "command", c.ID, "owner", c.Owner)
		// c may have been read before a delivery here that ended just now
		// wrote the result: read it again now that this one holds the
		// slot, so that an answered command is not sent to the agent again.
		cur, err := n.st.GetAgentCommand(ctx, c.Tenant, c.ID)
		if errors.Is(err, store.ErrNotFound) || (err == nil && (cur.Result != nil || cur.Cancelled)) {
			return
		}
		log.Debug("delivering a command to its agent")
		res, ok := n.hub.Forward(ctx, job)
		if !ok {
			return // answered elsewhere, cancelled, past its deadline, or this server stops
		}
		b, err := json.Marshal(res)
		if err == nil {
			err = n.st.SetCommandResult(context.WithoutCancel(ctx), c.Tenant, c.ID, b)
		}
		if err != nil {
			// The agent keeps the result: the next delivery gets it.
			log.Warn("write the agent's result", "err", err)
		}
	}()
}

// record keeps the agent streams held here in the database, at each
// connect and disconnect and every interval, and delivers the waiting
// commands of each agent that connected.
func (n *Node) record() {
	t := time.NewTicker(n.every)
	defer t.Stop()
	for {
		changed := n.hub.Changed()
		now := n.hub.Connected()
		var streams []postgres.AgentStream
		fresh := map[cmdKey]agent.Connected{}
		for _, a := range now {
			info, _ := json.Marshal(a.Info)
			streams = append(streams, postgres.AgentStream{Tenant: a.Tenant, Agent: a.Info.ID, Info: info})
			fresh[cmdKey{a.Tenant, a.Info.ID}] = a
		}
		n.mu.Lock()
		var joined []agent.Connected
		for k, a := range fresh {
			if old, ok := n.held[k]; !ok || old.Info.ConnectedAt != a.Info.ConnectedAt {
				joined = append(joined, a)
			}
		}
		n.held = fresh
		n.mu.Unlock()
		ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
		if err := n.st.PutAgentStreams(ctx, n.id, streams); err != nil && n.ctx.Err() == nil {
			n.log.Warn("record the agent streams held here", "err", err)
		}
		cancel()
		for _, a := range joined {
			n.spawn(func() { n.deliverPending(a.Tenant, a.Info.ID) })
		}
		select {
		case <-n.ctx.Done():
			return
		case <-changed:
		case <-t.C:
		}
	}
}

// Feed is the runner's feed of events other servers saved.
func (n *Node) Feed() runner.Feed { return n.feed }
