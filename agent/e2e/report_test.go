package e2e

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/client/clienttest"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/progress"
)

// applied is one "applied" event of a pipeline's log, with the log's
// position of the same command's result (0: none).
type applied struct {
	seq, resultSeq int64
	progress.AppliedEvent
}

// appliedEvents reads the pipeline's log (GET .../events) and returns its
// "applied" events.
func (s *sortie) appliedEvents(id string) []applied {
	s.t.Helper()
	var list api.EventList
	s.call("GET", "/api/v1/pipelines/"+id+"/events", nil, http.StatusOK, &list)
	results := map[string]int64{}
	for _, ev := range list.Events {
		var r pipeline.CommandResult
		if ev.Type == "command" && json.Unmarshal(ev.Data, &r) == nil {
			results[r.CommandID] = ev.Seq
		}
	}
	var out []applied
	for _, ev := range list.Events {
		if ev.Type != progress.EventApplied {
			continue
		}
		a := applied{seq: ev.Seq}
		if err := json.Unmarshal(ev.Data, &a.AppliedEvent); err != nil {
			s.t.Fatalf("applied event %d: %v: %s", ev.Seq, err, ev.Data)
		}
		a.resultSeq = results[a.Command]
		out = append(out, a)
	}
	return out
}

// checkApplied fails the test unless each applied event is of target prod,
// names objects of the test's namespace and precedes its command's result
// in the log; it returns the objects named, as Kind/namespace/name.
func (s *sortie) checkApplied(what string, evs []applied) []string {
	s.t.Helper()
	var objs []string
	for _, a := range evs {
		if a.Target != "prod" || a.Step == "" || len(a.Objects) == 0 {
			s.t.Errorf("%s: applied event %+v", what, a)
		}
		if a.resultSeq == 0 || a.seq > a.resultSeq {
			s.t.Errorf("%s: applied event of %s at %d, its command's result at %d: want the event first", what, a.Command, a.seq, a.resultSeq)
		}
		for _, o := range a.Objects {
			if o.Namespace != s.ns {
				s.t.Errorf("%s: applied object %s is outside namespace %s", what, o, s.ns)
			}
			if !slices.Contains(objs, o.String()) {
				objs = append(objs, o.String())
			}
		}
	}
	return objs
}

// Targets deployed through the agent get the "applied" events of the
// in-process executor: the objects each command wrote reach the pipeline's
// log, each before its command's result.
func TestAppliedEventsThroughAgent(t *testing.T) {
	s := newSortie(t)
	s.startAgent()
	oneStep := `    canary:
      steps:
        - setWeight: 50
`
	first := s.start(deployFile(s.ns, "web:v1", oneStep, "", ""))
	if p := s.waitPipeline(first, "the first deployment ends", ended); p.Status != pipeline.StatusSucceeded {
		t.Fatalf("first deployment: %s", clienttest.Dump(p))
	}
	objs := s.checkApplied("first deployment", s.appliedEvents(first))
	for _, want := range []string{"Deployment/" + s.ns + "/web", "Service/" + s.ns + "/web"} {
		if !slices.Contains(objs, want) {
			t.Errorf("first deployment: applied objects %v, want %s", objs, want)
		}
	}

	canary := s.start(deployFile(s.ns, "web:v2", oneStep, "", ""))
	if p := s.waitPipeline(canary, "the canary ends", ended); p.Status != pipeline.StatusSucceeded {
		t.Fatalf("canary: %s", clienttest.Dump(p))
	}
	evs := s.appliedEvents(canary)
	objs = s.checkApplied("canary", evs)
	var steps []string
	for _, a := range evs {
		steps = append(steps, a.Step)
	}
	if !slices.Contains(steps, "canary/0") || !slices.Contains(objs, "Deployment/"+s.ns+"/web") {
		t.Errorf("canary: applied events of steps %v naming %v, want the setWeight step's and the Deployment web", steps, objs)
	}
}
