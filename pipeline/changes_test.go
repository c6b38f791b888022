package pipeline

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestChanges(t *testing.T) {
	sp := spec(target("dev", canary(weight(10), pause(time.Minute))), target("prod", straight, "dev"))
	s0, _ := New("p1", sp, t0)
	s1, _, _, _ := Transition(s0, Start{}, t0)
	s2, _, _, _ := Transition(s1, CommandResult{CommandID: "p1/dev/canary/0", Message: "ImagePullBackOff"}, t0)
	if d := cmp.Diff([]Change{
		{From: StatusQueued, To: StatusRunning},
		{Target: "dev", From: StatusQueued, To: StatusRunning},
		{Target: "dev", Step: "canary/0", From: StatusQueued, To: StatusRunning},
	}, Changes(s0, s1)); d != "" {
		t.Errorf("start (-want +got):\n%s", d)
	}
	reason := "canary/0 failed: ImagePullBackOff"
	if d := cmp.Diff([]Change{
		{Target: "dev", Step: "canary/0", From: StatusRunning, To: StatusFailed, Message: "ImagePullBackOff"},
		{Target: "dev", Step: "canary/1", From: StatusQueued, To: StatusCancelled},
		{Target: "dev", Step: "finalize", From: StatusQueued, To: StatusCancelled},
		{Target: "dev", Step: "rollback", To: StatusRunning},
		{Target: "prod", From: StatusQueued, To: StatusCancelled, Message: "not started: dependency dev is rolling back"},
		{Target: "prod", Step: "canary/0", From: StatusQueued, To: StatusCancelled},
		{Target: "prod", Step: "finalize", From: StatusQueued, To: StatusCancelled},
	}, Changes(s1, s2)); d != "" {
		t.Errorf("failure (-want +got):\n%s", d)
	}
	if got := s2.Target("dev").Message; got != rollingBack+reason {
		t.Errorf("dev message %q", got)
	}
	if c := Changes(s2, s2); len(c) != 0 {
		t.Errorf("no change expected, got %v", c)
	}
}

// TestResumeAfterRestart: a state read back from storage carries its
// deadlines and the commands to re-issue, so a pause ends at its original
// deadline and nothing runs twice.
func TestResumeAfterRestart(t *testing.T) {
	sp := spec(target("a", canary(weight(10), pause(10*time.Minute))), target("b", canary(weight(20))))
	s := drive(t, sp, []Event{Start{}, CommandResult{CommandID: "p1/a/canary/0", Success: true, AchievedWeight: 10}})
	stored := roundTrip(t, s)
	if want := t0.Add(time.Second + 10*time.Minute); !stored.Wake().Equal(want) {
		t.Fatalf("wake after restart %v, want the original deadline %v", stored.Wake(), want)
	}
	if len(stored.Outstanding) != 1 || stored.Outstanding[0].ID != "p1/b/canary/0" {
		t.Fatalf("outstanding after restart: %v", stored.Outstanding)
	}
	// Restarted 20 minutes later: the pause ended at its deadline, and the
	// re-issued command's result is taken once.
	next, cmds, _, err := Transition(stored, Tick{}, t0.Add(20*time.Minute))
	if err != nil || next.Target("a").Step("canary/1").Status != StatusSucceeded || len(cmds) != 1 || cmds[0].Kind != CmdFinalize {
		t.Fatalf("tick after restart: %v %v", cmds, err)
	}
	res := CommandResult{CommandID: "p1/b/canary/0", Success: true, AchievedWeight: 20}
	once, c1, _, _ := Transition(next, res, t0.Add(20*time.Minute))
	twice, c2, _, _ := Transition(once, res, t0.Add(20*time.Minute))
	if len(c1) != 1 || len(c2) != 0 || !cmp.Equal(once, twice) {
		t.Errorf("a repeated result was not harmless: %v then %v", c1, c2)
	}
	if _, _, _, err := Transition(stored, nil, t0); ErrorCode(err) != CodeInvalid {
		t.Errorf("nil event: %v", err)
	}
}
