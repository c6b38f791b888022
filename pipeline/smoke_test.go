package pipeline

import (
	"testing"
	"time"
)

func TestSmoke(t *testing.T) {
	now := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	spec := Spec{Application: "a", Targets: []TargetSpec{{Name: "dev", Strategy: Strategy{Canary: &Canary{Steps: []Step{{SetWeight: &SetWeight{Weight: 50}}, {Pause: &Pause{Duration: Duration(time.Minute)}}}}}}}}
	s, err := New("p1", spec, now)
	if err != nil {
		t.Fatal(err)
	}
	s, cmds, wake, err := Transition(s, Start{}, now)
	t.Log(s.Status, cmds, wake, err)
	s, cmds, wake, err = Transition(s, CommandResult{CommandID: cmds[0].ID, Success: true, AchievedWeight: 50}, now)
	t.Log(s.Status, cmds, wake, err)
	s, cmds, wake, err = Transition(s, Tick{}, wake)
	t.Log(s.Status, cmds, wake, err)
	s, cmds, wake, err = Transition(s, CommandResult{CommandID: cmds[0].ID, Success: true}, wake)
	t.Log(s.Status, cmds, wake, err, s.Targets[0])
}
