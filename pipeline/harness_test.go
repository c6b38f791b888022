package pipeline

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the traces")

// t0 is the fake clock's origin; traces print times relative to it.
var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

var (
	alice   = Principal{Name: "alice", Roles: []string{RoleDeployer}}
	bob     = Principal{Name: "bob", Roles: []string{RoleDeployer, "Release Manager"}}
	admin   = Principal{Name: "root", Roles: []string{RoleOrganizationAdmin}}
	ci      = Principal{Name: "ci-bot", Roles: []string{RoleDeployer}}
	webhook = Principal{Name: "smoke-runner", Roles: []string{RoleDeployer}}
)

// trace drives one pipeline under a fake clock and writes what happens, for
// comparison with a golden file. Every state goes through a JSON round trip
// before the next event, as it would through the store.
type trace struct {
	t    *testing.T
	s    State
	now  time.Time
	wake time.Time
	out  strings.Builder
}

func newTrace(t *testing.T, spec Spec) *trace {
	t.Helper()
	s, err := New("p1", spec, t0)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	r := &trace{t: t, s: s, now: t0}
	r.printState()
	return r
}

func (r *trace) rel(at time.Time) string {
	if at.IsZero() {
		return "-"
	}
	return "+" + at.Sub(t0).String()
}

// after moves the fake clock forward without sending anything.
func (r *trace) after(d time.Duration) *trace { r.now = r.now.Add(d); return r }

// tick moves the clock to the wake-up time and sends Tick.
func (r *trace) tick() {
	r.t.Helper()
	if r.wake.IsZero() {
		r.t.Fatalf("tick: nothing to wake for")
	}
	r.now = r.wake
	r.do(Tick{})
}

// do sends ev and requires it to be accepted.
func (r *trace) do(ev Event) []Command {
	r.t.Helper()
	before, _ := json.Marshal(r.s)
	next, cmds, wake, err := Transition(r.s, ev, r.now)
	if after, _ := json.Marshal(r.s); string(before) != string(after) {
		r.t.Fatalf("Transition modified its input state")
	}
	fmt.Fprintf(&r.out, "\n@%s %s\n", r.rel(r.now), describe(ev))
	if err != nil {
		r.t.Fatalf("%s: %v", describe(ev), err)
	}
	if w := next.Wake(); !w.Equal(wake) {
		r.t.Fatalf("wake %v, State.Wake %v", wake, w)
	}
	for _, c := range cmds {
		fmt.Fprintf(&r.out, "  > %s\n", describeCommand(c))
	}
	r.s, r.wake = roundTrip(r.t, next), wake
	r.printState()
	return cmds
}

// refuse sends ev and requires it to be refused with code and a message
// containing want; the state must not change.
func (r *trace) refuse(ev Event, code Code, want string) {
	r.t.Helper()
	next, cmds, _, err := Transition(r.s, ev, r.now)
	fmt.Fprintf(&r.out, "\n@%s %s\n  refused (%s): %v\n", r.rel(r.now), describe(ev), ErrorCode(err), err)
	if err == nil || ErrorCode(err) != code || !strings.Contains(err.Error(), want) {
		r.t.Fatalf("%s: got error %v (code %q), want code %q containing %q", describe(ev), err, ErrorCode(err), code, want)
	}
	if len(cmds) != 0 || !cmp.Equal(next, r.s, cmpopts.EquateEmpty()) {
		r.t.Fatalf("%s: a refused action changed the state", describe(ev))
	}
}

// command returns the outstanding command of a target's step.
func (r *trace) command(target, step string) Command {
	r.t.Helper()
	for _, c := range r.s.Outstanding {
		if c.Target == target && c.Step == step {
			return c
		}
	}
	r.t.Fatalf("no outstanding command for %s %s; outstanding: %v", target, step, r.s.Outstanding)
	return Command{}
}

// ok reports the command of target's step done; weight is the achieved
// weight for setWeight.
func (r *trace) ok(target, step string, weight ...int) {
	r.t.Helper()
	res := CommandResult{CommandID: r.command(target, step).ID, Success: true}
	if len(weight) > 0 {
		res.AchievedWeight = weight[0]
	}
	r.do(res)
}

func (r *trace) fail(target, step, msg string) {
	r.t.Helper()
	r.do(CommandResult{CommandID: r.command(target, step).ID, Message: msg})
}

// inconclusive reports the analysis of target's step inconclusive.
func (r *trace) inconclusive(target, step, msg string) {
	r.t.Helper()
	r.do(CommandResult{CommandID: r.command(target, step).ID, Inconclusive: true, Message: msg})
}

func (r *trace) callback(target, step string, success bool, msg string) {
	r.t.Helper()
	t := r.s.Target(target)
	r.do(WebhookCallback{CommandID: t.Step(step).CommandID, Success: success, Message: msg, By: webhook})
}

func (r *trace) printState() {
	s := r.s
	fmt.Fprintf(&r.out, "  pipeline %s", s.Status)
	if s.Message != "" {
		fmt.Fprintf(&r.out, " %q", s.Message)
	}
	fmt.Fprintf(&r.out, " wake %s\n", r.rel(s.Wake()))
	for _, f := range s.Freezes {
		fmt.Fprintf(&r.out, "  frozen: %s\n", f.String())
	}
	for _, t := range s.Targets {
		fmt.Fprintf(&r.out, "  %-10s %s", t.Name, t.Status)
		if t.Deployed {
			fmt.Fprintf(&r.out, " weight %d/%d", t.AchievedWeight, t.RequestedWeight)
		}
		if t.Message != "" {
			fmt.Fprintf(&r.out, " %q", t.Message)
		}
		r.out.WriteString("\n")
		if t.Held != "" {
			fmt.Fprintf(&r.out, "    held %q until %s\n", t.Held, r.rel(t.HeldUntil))
		}
		if !t.WarmUntil.IsZero() {
			fmt.Fprintf(&r.out, "    previous version warm until %s\n", r.rel(t.WarmUntil))
		}
		steps := t.Steps
		if t.Rollback != nil {
			steps = append(steps, *t.Rollback)
		}
		var parts []string
		for _, st := range steps {
			p := st.ID + ":" + string(st.Status)
			if !st.Deadline.IsZero() {
				p += "@" + r.rel(st.Deadline)
			}
			parts = append(parts, p)
		}
		fmt.Fprintf(&r.out, "    %s\n", strings.Join(parts, " "))
	}
}

func describe(ev Event) string {
	switch ev := ev.(type) {
	case Start:
		if ev.BreakGlass {
			return fmt.Sprintf("Start by %s %v break glass %q", ev.By.Name, ev.By.Roles, ev.Reason)
		}
		s := "Start by " + ev.By.Name
		for _, f := range ev.Freezes {
			s += " (" + f.String() + ")"
		}
		return s
	case SetFreeze:
		return fmt.Sprintf("SetFreeze %s by %s", ev.Freeze.String(), ev.By.Name)
	case LiftFreeze:
		return fmt.Sprintf("LiftFreeze %s by %s", ev.Scope, ev.By.Name)
	case SetWindows:
		return fmt.Sprintf("SetWindows %d by %s", len(ev.Windows), ev.By.Name)
	case Tick:
		return "Tick"
	case CommandResult:
		if ev.Inconclusive {
			return fmt.Sprintf("CommandResult %s inconclusive %q", ev.CommandID, ev.Message)
		}
		if ev.Success {
			return fmt.Sprintf("CommandResult %s ok weight=%d", ev.CommandID, ev.AchievedWeight)
		}
		return fmt.Sprintf("CommandResult %s failed %q", ev.CommandID, ev.Message)
	case Approve:
		return fmt.Sprintf("Approve %s %s by %s %v", ev.Target, ev.Step, ev.By.Name, ev.By.Roles)
	case Reject:
		return fmt.Sprintf("Reject %s %s by %s %v %q", ev.Target, ev.Step, ev.By.Name, ev.By.Roles, ev.Reason)
	case Skip:
		return fmt.Sprintf("Skip %s %s by %s", ev.Target, ev.Step, ev.By.Name)
	case Rollback:
		return fmt.Sprintf("Rollback %s by %s", ev.Target, ev.By.Name)
	case Cancel:
		return fmt.Sprintf("Cancel by %s %q", ev.By.Name, ev.Reason)
	case WebhookCallback:
		return fmt.Sprintf("WebhookCallback %s success=%t %q", ev.CommandID, ev.Success, ev.Message)
	}
	return fmt.Sprintf("%T", ev)
}

func describeCommand(c Command) string {
	s := fmt.Sprintf("%s %s %s/%s", c.ID, c.Kind, c.Account, c.Namespace)
	if c.Kind == CmdSetWeight {
		s += fmt.Sprintf(" weight=%d", c.Weight)
	}
	if c.Webhook != "" {
		s += " webhook=" + c.Webhook
	}
	if len(c.Params) > 0 {
		s += " params=" + string(c.Params)
	}
	return s
}

func roundTrip(t *testing.T, s State) State {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatalf("marshal state: %v", err)
	}
	var back State
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("unmarshal state: %v", err)
	}
	if d := cmp.Diff(s, back, cmpopts.EquateEmpty()); d != "" {
		t.Fatalf("state changed through JSON (-before +after):\n%s", d)
	}
	return back
}

// check compares the trace with testdata/name.golden, or rewrites it with
// -update, and checks the history and final status.
func (r *trace) check(name string, final Status) {
	r.t.Helper()
	r.out.WriteString("\nhistory:\n")
	for _, h := range r.s.History {
		line := fmt.Sprintf("  %s %s by %s %s %s %s", r.rel(h.At), h.Action, h.By, h.Target, h.Step, h.Message)
		r.out.WriteString(strings.TrimRight(line, " ") + "\n")
	}
	path := filepath.Join("testdata", name+".golden")
	got := r.out.String()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		r.t.Fatalf("%v (run go test ./pipeline -update)", err)
	}
	if d := cmp.Diff(string(want), got); d != "" {
		r.t.Errorf("trace differs from %s (-want +got):\n%s", path, d)
	}
	if r.s.Status != final {
		r.t.Errorf("pipeline ended %s, want %s", r.s.Status, final)
	}
	if final.Terminal() && (len(r.s.Outstanding) != 0 || !r.s.Wake().IsZero()) {
		r.t.Errorf("ended pipeline still has outstanding commands %v or a wake-up", r.s.Outstanding)
	}
}
