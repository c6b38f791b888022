package pipeline

import (
	"strings"
	"testing"
)

// TestAnalysisVerdicts settles one analysis step by every verdict under
// every combination of modes: an inconclusive verdict follows the step's
// inconclusive setting only, never rollBackMode.
func TestAnalysisVerdicts(t *testing.T) {
	const (
		pass         = "pass"
		fail         = "fail"
		inconclusive = "inconclusive"
	)
	tests := []struct {
		verdict, inconclusive, rollBack, rollForward string
		step, target                                 Status
		message                                      string
	}{
		{pass, "", "", "", StatusSucceeded, StatusRunning, "3 runs passed"},
		{pass, "", "", ModeManual, StatusAwaitingApproval, StatusAwaitingApproval, "analysis passed; approve to go on: 3 runs passed"},
		{fail, "", "", "", StatusFailed, StatusRunning, "analysis: 3 runs passed"},
		{fail, "", ModeManual, "", StatusAwaitingApproval, StatusAwaitingApproval, "analysis failed; roll back, or approve to go on anyway"},
		{fail, InconclusiveProceed, "", "", StatusFailed, StatusRunning, "analysis: "},

		// The default waits, whatever rollBackMode says.
		{inconclusive, "", "", "", StatusAwaitingApproval, StatusAwaitingApproval, "analysis inconclusive; approve to go on, or roll back: 3 runs passed"},
		{inconclusive, "", ModeAutomatic, "", StatusAwaitingApproval, StatusAwaitingApproval, "analysis inconclusive; approve to go on, or roll back"},
		{inconclusive, InconclusiveWait, ModeManual, ModeManual, StatusAwaitingApproval, StatusAwaitingApproval, "analysis inconclusive; approve to go on, or roll back"},
		{inconclusive, InconclusiveRollback, "", "", StatusFailed, StatusRunning, "analysis inconclusive: 3 runs passed"},
		{inconclusive, InconclusiveRollback, ModeManual, "", StatusFailed, StatusRunning, "analysis inconclusive: "},
		{inconclusive, InconclusiveProceed, "", "", StatusSucceeded, StatusRunning, "analysis inconclusive, taken as passed (inconclusive: proceed): 3 runs passed"},
		{inconclusive, InconclusiveProceed, ModeManual, "", StatusSucceeded, StatusRunning, "taken as passed"},
		{inconclusive, InconclusiveProceed, "", ModeManual, StatusAwaitingApproval, StatusAwaitingApproval, "analysis inconclusive, taken as passed (inconclusive: proceed); approve to go on: 3 runs passed"},
	}
	for _, tt := range tests {
		name := strings.Join([]string{tt.verdict, "inconclusive=" + tt.inconclusive, "rollBack=" + tt.rollBack, "rollForward=" + tt.rollForward}, " ")
		t.Run(name, func(t *testing.T) {
			sp := spec(target("prod", canary(weight(10), onInconclusive(tt.inconclusive, analysis(tt.rollBack, tt.rollForward)))))
			res := CommandResult{CommandID: "p1/prod/canary/1", Message: "3 runs passed"}
			switch tt.verdict {
			case pass:
				res.Success = true
			case inconclusive:
				res.Inconclusive = true
			}
			s := drive(t, sp, []Event{Start{By: ci}, CommandResult{CommandID: "p1/prod/canary/0", Success: true, AchievedWeight: 10}, res})
			tgt := s.Target("prod")
			st := tgt.Step("canary/1")
			if st.Status != tt.step || tgt.Status != tt.target {
				t.Errorf("step %s, target %s (%q); want step %s, target %s", st.Status, tgt.Status, tgt.Message, tt.step, tt.target)
			}
			if !strings.Contains(st.Message, tt.message) {
				t.Errorf("step message %q, want it to contain %q", st.Message, tt.message)
			}
			if st.Status == StatusFailed && tgt.Rollback == nil {
				t.Errorf("a failed analysis did not roll the target back")
			}
		})
	}
}

func TestInconclusiveSettingIsValidated(t *testing.T) {
	sp := spec(target("prod", canary(weight(10), onInconclusive("ignore", analysis("", "")))))
	_, err := New("p1", sp, t0)
	if err == nil || !strings.Contains(err.Error(), `inconclusive "ignore" is none of "wait", "rollback", "proceed"`) {
		t.Errorf("New: %v, want the setting refused", err)
	}
}
