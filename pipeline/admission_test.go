package pipeline

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestAdmit(t *testing.T) {
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	done := []Ref{{"p0", StatusSucceeded, at(0)}, {"p1", StatusFailed, at(1)}, {"p2", StatusCancelled, at(2)}}
	running := append(done, Ref{"p3", StatusAwaitingApproval, at(3)})
	queued := append(running, Ref{"p4", StatusQueued, at(4)})
	onlyQueued := append(done, Ref{"p4", StatusQueued, at(4)})
	for _, tc := range []struct {
		name    string
		policy  InProgressPolicy
		others  []Ref
		want    Admission
		wantErr string
	}{
		{"first ever", "", nil, Admission{Verdict: VerdictStart}, ""},
		{"only ended ones", InProgressReject, done, Admission{Verdict: VerdictStart}, ""},
		{"one in flight, reject by default", "", running, Admission{}, "application web already has a deployment in progress (pipeline p3)"},
		{"one in flight, reject", InProgressReject, running, Admission{}, "pipeline p3"},
		{"one queued counts as in flight", InProgressReject, onlyQueued, Admission{}, "pipeline p4"},
		{"enqueueOne queues", InProgressEnqueueOne, running, Admission{Verdict: VerdictQueue}, ""},
		{"enqueueOne replaces the queued one", InProgressEnqueueOne, queued, Admission{Verdict: VerdictQueue, Replace: []string{"p4"}}, ""},
		{"enqueueOne with nothing in flight starts", InProgressEnqueueOne, done, Admission{Verdict: VerdictStart}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sp := spec(target("dev", straight))
			sp.IfInProgress = tc.policy
			got, err := Admit(sp, tc.others)
			if tc.wantErr != "" {
				if ErrorCode(err) != CodeConflict || !contains(err, tc.wantErr) {
					t.Fatalf("got %v (code %q), want conflict containing %q", err, ErrorCode(err), tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("(-want +got)\n%s", d)
			}
		})
	}
}

func TestPickNext(t *testing.T) {
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	for _, tc := range []struct {
		name    string
		others  []Ref
		start   string
		replace []string
	}{
		{"nothing", nil, "", nil},
		{"nothing queued", []Ref{{"p1", StatusSucceeded, at(1)}}, "", nil},
		{"still in flight", []Ref{{"p1", StatusPaused, at(1)}, {"p2", StatusQueued, at(2)}}, "", nil},
		{"in flight ended", []Ref{{"p1", StatusFailed, at(1)}, {"p2", StatusQueued, at(2)}}, "p2", nil},
		{"newest queued wins", []Ref{{"p3", StatusQueued, at(3)}, {"p1", StatusRolledBack, at(1)}, {"p2", StatusQueued, at(2)}}, "p3", []string{"p2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start, replace := PickNext(tc.others)
			if start != tc.start || !cmp.Equal(replace, tc.replace, cmpopts.EquateEmpty()) {
				t.Errorf("PickNext = %q, %v; want %q, %v", start, replace, tc.start, tc.replace)
			}
		})
	}
}

// TestEnqueueOneFlow plays admission with real pipelines: p2 is queued
// behind p1, p3 replaces p2 (which ends CANCELLED), and p3 starts when p1
// ends.
func TestEnqueueOneFlow(t *testing.T) {
	sp := spec(target("dev", straight))
	sp.IfInProgress = InProgressEnqueueOne
	refs := func(ss ...State) []Ref {
		var r []Ref
		for _, s := range ss {
			r = append(r, Ref{ID: s.ID, Status: s.Status, CreatedAt: s.CreatedAt})
		}
		return r
	}
	mustNew := func(id string, at time.Time) State {
		s, err := New(id, sp, at)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	p1 := mustNew("p1", t0)
	if a, err := Admit(sp, nil); err != nil || a.Verdict != VerdictStart {
		t.Fatalf("p1: %v %v", a, err)
	}
	p1, _, _, _ = Transition(p1, Start{By: ci}, t0)
	p2 := mustNew("p2", t0.Add(time.Minute))
	if a, err := Admit(sp, refs(p1)); err != nil || a.Verdict != VerdictQueue || len(a.Replace) != 0 {
		t.Fatalf("p2: %v %v", a, err)
	}
	p3 := mustNew("p3", t0.Add(2*time.Minute))
	a, err := Admit(sp, refs(p1, p2))
	if err != nil || a.Verdict != VerdictQueue || !cmp.Equal(a.Replace, []string{"p2"}) {
		t.Fatalf("p3: %v %v", a, err)
	}
	p2, _, _, err = Transition(p2, Cancel{By: ci, Reason: "replaced by pipeline p3"}, t0.Add(2*time.Minute))
	if err != nil || p2.Status != StatusCancelled || p2.Message != "cancelled by ci-bot: replaced by pipeline p3" {
		t.Fatalf("p2 after replacement: %s %q %v", p2.Status, p2.Message, err)
	}
	if start, _ := PickNext(refs(p1, p2, p3)); start != "" {
		t.Fatalf("started %s while p1 is in flight", start)
	}
	p1, _, _, _ = Transition(p1, Cancel{By: alice}, t0.Add(3*time.Minute))
	p1, _, _, _ = Transition(p1, CommandResult{CommandID: "p1/dev/rollback", Success: true}, t0.Add(3*time.Minute))
	if p1.Status != StatusCancelled {
		t.Fatalf("p1 is %s", p1.Status)
	}
	if start, replace := PickNext(refs(p1, p2, p3)); start != "p3" || len(replace) != 0 {
		t.Fatalf("PickNext = %q %v, want p3", start, replace)
	}
}

func contains(err error, s string) bool {
	return err != nil && len(s) > 0 && strings.Contains(err.Error(), s)
}
