package pipeline

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Spec)
		want []string // every part must appear; none means valid
	}{
		{"valid", func(*Spec) {}, nil},
		{"no application", func(s *Spec) { s.Application = "" }, []string{"application is empty"}},
		{"no targets", func(s *Spec) { s.Targets = nil }, []string{"no targets"}},
		{"duplicate", func(s *Spec) { s.Targets = append(s.Targets, target("dev", straight)) }, []string{`target "dev" is defined twice`}},
		{"dangling dependsOn", func(s *Spec) { s.Targets[1].DependsOn = []string{"qa"} }, []string{`target "prod" depends on unknown target "qa"`}},
		{"cycle", func(s *Spec) { s.Targets[0].DependsOn = []string{"prod"} }, []string{"dependency cycle: [dev prod dev]"}},
		{"weight out of range", func(s *Spec) { s.Targets[0].Strategy = canary(weight(101)) }, []string{"canary[0]: weight 101 is not within 0..100"}},
		{"setWeight as gate", func(s *Spec) { s.Targets[0].BeforeDeployment = []Step{weight(5)} }, []string{"beforeDeployment[0]: setWeight is only a canary step"}},
		{"pause with both", func(s *Spec) {
			p := approval()
			p.Pause.Duration = Duration(time.Second)
			s.Targets[0].AfterDeployment = []Step{p}
		}, []string{"afterDeployment[0]: a pause needs exactly one of duration and untilApproved"}},
		{"roles without approval", func(s *Spec) {
			p := pause(time.Second)
			p.Pause.RequiresRoles = []string{"x"}
			s.Targets[0].Strategy = canary(p)
		}, []string{"requiresRoles, approvers, approvals, notByStarter and approvalExpiration need untilApproved"}},
		{"too many approvals", func(s *Spec) {
			p := approval()
			p.Pause.Approvals = MaxApprovals + 1
			s.Targets[0].Strategy = canary(p)
		}, []string{"approvals must be 1 to 10"}},
		{"empty step", func(s *Spec) { s.Targets[0].Strategy = canary(Step{}) }, []string{"a step needs exactly one kind, has 0"}},
		{"two kinds", func(s *Spec) { s.Targets[0].Strategy = canary(Step{SetWeight: &SetWeight{}, Pause: &Pause{}}) }, []string{"has 2"}},
		{"both strategies", func(s *Spec) { s.Targets[0].Strategy.BlueGreen = &BlueGreen{} }, []string{"strategy is both canary and blueGreen"}},
		{"bad mode", func(s *Spec) { a := analysis("sometimes", ""); s.Targets[0].Strategy = canary(a) }, []string{`mode "sometimes"`}},
		{"webhook without name", func(s *Spec) { s.Targets[0].Strategy = blueGreen([]Step{hook("")}, nil) }, []string{"redirectTrafficAfter[0]: runWebhook has no name"}},
		{"bad policy", func(s *Spec) { s.IfInProgress = "queueAll" }, []string{`ifDeploymentInProgress "queueAll"`}},
		{"unknown filter", func(s *Spec) { s.TargetFilters = []string{"qa"} }, []string{`target filter names unknown target "qa"`, "leave no target"}},
		{"all at once", func(s *Spec) { s.Application = ""; s.Targets[1].DependsOn = []string{"qa"} }, []string{"application is empty", "unknown target"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := spec(target("dev", straight), target("prod", straight, "dev"))
			tc.edit(&s)
			err := s.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if ErrorCode(err) != CodeInvalid {
				t.Fatalf("got %v, want an invalid spec", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not say %q", err, w)
				}
			}
			if _, nerr := New("p1", s, t0); nerr == nil {
				t.Errorf("New accepted an invalid spec")
			}
		})
	}
}

// TestSpecJSON pins the stored form of a Spec: durations as text, one key
// per step kind, as in the deployment file.
func TestSpecJSON(t *testing.T) {
	s := spec(target("prod", canary(weight(25), pause(90*time.Second), expiringApproval(4*time.Hour, "Release Manager"))).first())
	s.Timeout = Duration(10 * time.Minute)
	s.IfInProgress = InProgressEnqueueOne
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"application":"web","tenant":"main","targets":[{"name":"prod","account":"prod-cluster","namespace":"web",` +
		`"strategy":{"name":"canary","canary":{"steps":[{"setWeight":{"weight":25}},{"pause":{"duration":"1m30s"}},` +
		`{"pause":{"untilApproved":true,"requiresRoles":["Release Manager"],"approvalExpiration":"4h0m0s"}}]}},"firstDeployment":true}],` +
		`"timeout":"10m0s","ifDeploymentInProgress":"enqueueOne"}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
	var back Spec
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(s, back); d != "" {
		t.Errorf("round trip (-want +got):\n%s", d)
	}
	if err := json.Unmarshal([]byte(`{"timeout":"ten minutes"}`), &back); err == nil {
		t.Errorf("accepted a bad duration")
	}
}

func TestTerminal(t *testing.T) {
	for s, want := range map[Status]bool{
		StatusQueued: false, StatusRunning: false, StatusPaused: false, StatusAwaitingApproval: false,
		StatusSucceeded: true, StatusFailed: true, StatusCancelled: true, StatusRolledBack: true,
	} {
		if s.Terminal() != want {
			t.Errorf("%s.Terminal() = %t", s, !want)
		}
	}
}
