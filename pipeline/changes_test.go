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
