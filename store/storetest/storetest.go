package storetest

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
)

// Opener opens a store on a new, empty database and returns it with reopen,
// which opens another store on the same database as a restarted server
// would, while the first is still open and never closed cleanly: the state
// a crash leaves. Both are closed by cleanups registered on t.
type Opener func(t *testing.T) (s store.Store, reopen func(t *testing.T) store.Store)

// Run runs the conformance suite: every method of store.Store and every
// behaviour store.go documents, each subtest on a new database.
func Run(t *testing.T, open Opener) {
	for _, tc := range []struct {
		name string
		f    func(t *testing.T, open Opener)
	}{
		{"Tenants", testTenants},
		{"Credentials", testCredentials},
		{"AgentBindings", testAgentBindings},
		{"Users", testUsers},
		{"Revocations", testRevocations},
		{"MetricProviders", testMetricProviders},
		{"Secrets", testSecrets},
		{"DataKeys", testDataKeys},
		{"Roles", testRoles},
		{"Windows", testWindows},
		{"Freezes", testFreezes},
		{"Warm", testWarm},
		{"Audit", testAudit},
		{"Subscriptions", testSubscriptions},
		{"Outbox", testOutbox},
		{"OutboxClaims", testOutboxClaims},
		{"ActionLinks", testActionLinks},
		{"SigningKeys", testSigningKeys},
		{"CreateAndGet", testCreateAndGet},
		{"CreateDuplicate", testCreateDuplicate},
		{"CreateUnknownTenant", testCreateUnknownTenant},
		{"Save", testSave},
		{"SaveStale", testSaveStale},
		{"SaveConcurrent", testSaveConcurrent},
		{"SaveMissing", testSaveMissing},
		{"SaveKeepsSource", testSaveKeepsSource},
		{"Wake", testWake},
		{"Events", testEvents},
		{"List", testList},
		{"ListDefaultLimit", testListDefaultLimit},
		{"ApplicationRefs", testApplicationRefs},
		{"ResumablePipelines", testResumable},
		{"DeployedBefore", testDeployedBefore},
		{"Isolation", testIsolation},
		{"AdmitSeesOthers", testAdmitSeesOthers},
		{"AdmitRefuses", testAdmitRefuses},
		{"AdmitShapesPipeline", testAdmitShapesPipeline},
		{"AdmitConcurrent", testAdmitConcurrent},
		{"AdmitIndependent", testAdmitIndependent},
		{"Reopen", testReopen},
		{"LeaseFencing", testLeaseFencing},
		{"LeaseExpiry", testLeaseExpiry},
		{"LeaseRelease", testLeaseRelease},
		{"LeaseFairShare", testLeaseFairShare},
		{"LeaseHandOver", testLeaseHandOver},
		{"LeaseNextExpiry", testLeaseNextExpiry},
		{"WarmClaims", testWarmClaims},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.f(t, open)
		})
	}
}

// CmpOptions compare what a store returns with what was written: JSON
// documents (json.RawMessage) by meaning, since a store may compact them;
// an empty slice or map like a nil one, as JSON's omitempty makes them;
// times with Equal (cmp's default for types with an Equal method), whatever
// their location.
var CmpOptions = cmp.Options{
	cmpopts.EquateEmpty(),
	cmp.FilterValues(func(a, b json.RawMessage) bool { return len(a) > 0 || len(b) > 0 },
		cmp.Comparer(jsonEqual)),
}

var opts = CmpOptions

func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	return reflect.DeepEqual(x, y)
}

// samePipeline fails t unless got is want as stored: every field equal, the
// state's JSON byte for byte, and the store's times in UTC.
func samePipeline(t *testing.T, got, want *store.Pipeline) {
	t.Helper()
	if diff := cmp.Diff(want, got, opts); diff != "" {
		t.Errorf("pipeline %s (-want +got):\n%s", want.ID, diff)
	}
	sameStateJSON(t, got.State, want.State)
	for name, tm := range map[string]time.Time{"CreatedAt": got.CreatedAt, "UpdatedAt": got.UpdatedAt, "Wake": got.Wake} {
		if !tm.IsZero() && tm.Location() != time.UTC {
			t.Errorf("pipeline %s: %s is in %v, want UTC", got.ID, name, tm.Location())
		}
	}
}

func sameStateJSON(t *testing.T, got, want pipeline.State) {
	t.Helper()
	g, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	w, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(g, w) {
		t.Errorf("state %s does not round-trip:\n got %s\nwant %s", want.ID, g, w)
	}
}

func clone(p *store.Pipeline) *store.Pipeline {
	c := *p
	c.Deployed = slices.Clone(p.Deployed)
	b, err := json.Marshal(p.State)
	must(err)
	c.State = pipeline.State{}
	must(json.Unmarshal(b, &c.State))
	return &c
}

func ids(ps []*store.Pipeline) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.ID)
	}
	return out
}

func create(t *testing.T, s store.Store, p *store.Pipeline, es ...store.Event) *store.Pipeline {
	t.Helper()
	if err := s.CreatePipeline(t.Context(), p, nil, es); err != nil {
		t.Fatalf("CreatePipeline %s: %v", p.ID, err)
	}
	return p
}

func save(t *testing.T, s store.Store, p *store.Pipeline, es ...store.Event) {
	t.Helper()
	if err := s.SavePipeline(t.Context(), p, es); err != nil {
		t.Fatalf("SavePipeline %s: %v", p.ID, err)
	}
}

func get(t *testing.T, s store.Store, tenant, id string) *store.Pipeline {
	t.Helper()
	p, err := s.GetPipeline(t.Context(), tenant, id)
	if err != nil {
		t.Fatalf("GetPipeline %s/%s: %v", tenant, id, err)
	}
	return p
}

func allEvents(t *testing.T, s store.Store, tenant, id string) []store.Event {
	t.Helper()
	es, err := s.Events(t.Context(), tenant, id, 0)
	if err != nil {
		t.Fatalf("Events %s/%s: %v", tenant, id, err)
	}
	return es
}

func createTenant(t *testing.T, s store.Store, name string) {
	t.Helper()
	if err := s.CreateTenant(t.Context(), name); err != nil {
		t.Fatalf("CreateTenant %s: %v", name, err)
	}
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: got error %v, want %v", what, err, target)
	}
}
