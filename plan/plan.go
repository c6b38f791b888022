package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/sortie-cd/sortie/deployfile"
)

// DefaultNamespace is the namespace a target without one names in its
// variables.
const DefaultNamespace = "default"

// Plan is a deployment resolved per target.
type Plan struct {
	Application string    `json:"application"`
	Pipeline    string    `json:"pipeline"`
	Targets     []*Target `json:"targets"`
}

// Target returns the plan of the named target, or nil.
func (p *Plan) Target(name string) *Target {
	if p == nil {
		return nil
	}
	for _, t := range p.Targets {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// Target is what a deployment does in one target.
type Target struct {
	Application string `json:"application"`
	Pipeline    string `json:"pipeline"`
	Name        string `json:"name"`
	Account     string `json:"account"`
	// Namespace is the target's namespace. When the file gives none, it is
	// the one its Deployments name (or "default"), and OwnNamespaces is set:
	// each object then goes to the namespace its manifest names, or
	// "default", as kubectl apply would put it.
	Namespace     string `json:"namespace"`
	OwnNamespaces bool   `json:"ownNamespaces,omitempty"`
	// Version names what the target deploys: a hash of its rendered
	// manifests, so that a change to any of them (a ConfigMap the pods read,
	// say) is a new version that goes through the strategy, and the same
	// manifests again are the same version. ReplicaSetName is Armory's name
	// for the new version's pods: the first Deployment's name and the
	// version ({{armory.replicaSetName}}, the deploy.armory.io/replica-set-name
	// annotation and ARMORY_REPLICA_SET_NAME).
	Version        string `json:"version"`
	ReplicaSetName string `json:"replicaSetName,omitempty"`
	// Manifests are the target's manifest files, their variables rendered.
	Manifests []Manifest `json:"manifests"`
	// Traffic, when set, moves a canary's traffic by weights.
	Traffic *Traffic `json:"traffic,omitempty"`
	// Context is the file's context with the deployment's additions.
	Context map[string]string `json:"context,omitempty"`
	// Webhooks are the file's webhooks this target's steps call, by name.
	Webhooks map[string]*deployfile.Webhook `json:"webhooks,omitempty"`
	// Queries are the file's analysis queries this target's steps use, by
	// name; DefaultProvider is analysis.defaultMetricProviderName.
	Queries         map[string]*deployfile.Query `json:"queries,omitempty"`
	DefaultProvider string                       `json:"defaultProvider,omitempty"`
}

// Manifest is one manifest file of a target, rendered.
type Manifest struct {
	Path string `json:"path"`
	Text string `json:"text"`
}

// Traffic is the weight-based traffic management of a canary: its smi,
// istio and httpRoute entries. Blue/green's kubernetes Services are in
// the engine's spec.
type Traffic struct {
	SMI       []SMITraffic       `json:"smi,omitempty"`
	Istio     []IstioTraffic     `json:"istio,omitempty"`
	HTTPRoute []HTTPRouteTraffic `json:"httpRoute,omitempty"`
}

// SMITraffic is an SMI TrafficSplit of a root Service between a stable and
// a canary Service. The TrafficSplit is Sortie's unless one of that name
// exists already.
type SMITraffic struct {
	RootService   string `json:"rootService"`
	CanaryService string `json:"canaryService,omitempty"` // default ROOT-canary
	TrafficSplit  string `json:"trafficSplit,omitempty"`  // default ROOT-sortie-split
}

// IstioTraffic is an Istio VirtualService whose http route is split
// between two subsets of a DestinationRule.
type IstioTraffic struct {
	VirtualService string `json:"virtualService"`
	Route          string `json:"route,omitempty"` // name of the http route; the first when empty
	// DestinationRule, when set, gets its subsets' labels pointed at the
	// old and the new version's pods; without it, the subsets must exist
	// and select them already.
	DestinationRule string `json:"destinationRule,omitempty"`
	ActiveSubset    string `json:"activeSubset,omitempty"` // default "stable"
	CanarySubset    string `json:"canarySubset,omitempty"` // default "canary"
}

// HTTPRouteTraffic is a Gateway API HTTPRoute whose backends are weighted
// between a root and a canary Service.
type HTTPRouteTraffic struct {
	Name          string `json:"name"`
	RootService   string `json:"rootService"`
	CanaryService string `json:"canaryService,omitempty"` // default ROOT-canary
}

// Vars are the armory.* (and sortie.*) values of the target, by bare name:
// applicationName, deploymentId, environmentName, accountName, namespace
// and replicaSetName (when the target has a Deployment), with extra (what
// only the caller knows, such as callbackUri or an analysis window) over
// them.
func (t *Target) Vars(extra map[string]string) map[string]string {
	v := t.manifestVars()
	if t.ReplicaSetName != "" {
		v["replicaSetName"] = t.ReplicaSetName
	}
	maps.Copy(v, extra)
	return v
}

// manifestVars are the variables manifests render with: all but
// replicaSetName, which names what they render to.
func (t *Target) manifestVars() map[string]string {
	ns := t.Namespace
	if ns == "" {
		ns = DefaultNamespace
	}
	return map[string]string{
		"applicationName": t.Application,
		"deploymentId":    t.Pipeline,
		"environmentName": t.Name,
		"accountName":     t.Account,
		"namespace":       ns,
	}
}

// Resolve resolves a valid deployment file, as it will run under pipeline
// id, into the plan of each of its targets. It fails, naming the manifest,
// when a manifest's variables do not render.
func Resolve(f *deployfile.File, pipelineID string) (*Plan, error) {
	p := &Plan{Application: f.Application, Pipeline: pipelineID}
	for _, dt := range f.Targets {
		t := &Target{
			Application: f.Application, Pipeline: pipelineID,
			Name: dt.Name, Account: dt.Account, Namespace: dt.Namespace,
			Context: maps.Clone(f.Context),
			Traffic: traffic(f, dt.Name),
		}
		if t.Namespace == "" {
			ns, err := ownNamespace(f, t)
			if err != nil {
				return nil, err
			}
			t.Namespace, t.OwnNamespaces = ns, true
		}
		if err := t.render(f); err != nil {
			return nil, err
		}
		t.gates(f, dt)
		p.Targets = append(p.Targets, t)
	}
	return p, nil
}

func forTarget(refs []deployfile.Ref, target string) bool {
	return len(refs) == 0 || slices.ContainsFunc(refs, func(r deployfile.Ref) bool { return r.Name == target })
}

// render fills the target's manifests, their variables rendered.
func (t *Target) render(f *deployfile.File) error {
	vars := deployfile.Variables{
		Armory:  t.manifestVars(),
		Context: t.Context,
		Secret: func(string) (string, bool) {
			return "", false // secrets belong in webhooks, not in manifests
		},
	}
	for _, m := range f.Manifests {
		if m == nil || !forTarget(m.Targets, t.Name) {
			continue
		}
		for _, mf := range m.Files {
			text, err := deployfile.Render(mf.Content, vars)
			if err != nil {
				return fmt.Errorf("manifest %s for target %s: %w", mf.Path, t.Name, err)
			}
			t.Manifests = append(t.Manifests, Manifest{Path: mf.Path, Text: text})
		}
	}
	if len(t.Manifests) == 0 {
		return fmt.Errorf("no manifests for target %q", t.Name)
	}
	h := sha256.New()
	for _, m := range t.Manifests {
		fmt.Fprintf(h, "%d:%s%d:%s", len(m.Path), m.Path, len(m.Text), m.Text)
	}
	t.Version = hex.EncodeToString(h.Sum(nil))[:10]
	if d := t.deployments(f); len(d) > 0 {
		t.ReplicaSetName = d[0].Name + "-" + t.Version
	}
	return nil
}

// deployments are the Deployments among the target's manifests, in order.
func (t *Target) deployments(f *deployfile.File) []deployfile.Object {
	var out []deployfile.Object
	for _, m := range f.Manifests {
		if m == nil || !forTarget(m.Targets, t.Name) {
			continue
		}
		for _, mf := range m.Files {
			for _, o := range mf.Objects {
				if o.Kind == "Deployment" && strings.HasPrefix(o.APIVersion, "apps/") {
					out = append(out, o)
				}
			}
		}
	}
	return out
}

// ownNamespace is the namespace of a target the file gives none: the one
// its Deployments name, or "default". Deployments in two namespaces cannot
// share one strategy, and are refused.
func ownNamespace(f *deployfile.File, t *Target) (string, error) {
	ns := ""
	for _, d := range t.deployments(f) {
		dns := d.Namespace
		if dns == "" {
			dns = DefaultNamespace
		}
		if ns != "" && dns != ns {
			return "", fmt.Errorf("target %s has no namespace and its Deployments name two (%s and %s); give the target a namespace", t.Name, ns, dns)
		}
		ns = dns
	}
	if ns == "" {
		ns = DefaultNamespace
	}
	return ns, nil
}

// gates fills the webhooks and queries the target's steps use.
func (t *Target) gates(f *deployfile.File, dt *deployfile.Target) {
	var all []*deployfile.Step
	if c := dt.Constraints; c != nil {
		all = append(all, c.BeforeDeployment...)
		all = append(all, c.AfterDeployment...)
	}
	if st := f.Strategies.Get(dt.Strategy.Name); st != nil {
		switch {
		case st.Canary != nil:
			all = append(all, st.Canary.Steps...)
		case st.BlueGreen != nil:
			all = append(all, st.BlueGreen.RedirectTrafficAfter...)
			all = append(all, st.BlueGreen.ShutDownOldVersionAfter...)
		}
	}
	for _, s := range all {
		switch {
		case s == nil:
		case s.RunWebhook != nil:
			for _, wh := range f.Webhooks {
				if wh != nil && wh.Name == s.RunWebhook.Name.Name {
					if t.Webhooks == nil {
						t.Webhooks = map[string]*deployfile.Webhook{}
					}
					t.Webhooks[wh.Name] = wh
				}
			}
		case s.Analysis != nil && f.Analysis != nil:
			t.DefaultProvider = f.Analysis.DefaultMetricProviderName
			for _, ref := range s.Analysis.Queries {
				for _, q := range f.Analysis.Queries {
					if q != nil && q.Name == ref.Name {
						if t.Queries == nil {
							t.Queries = map[string]*deployfile.Query{}
						}
						t.Queries[q.Name] = q
					}
				}
			}
		}
	}
}

// traffic is the weight-based traffic management the file configures for
// target, or nil: a canary then splits traffic by pod counts.
func traffic(f *deployfile.File, target string) *Traffic {
	var tr Traffic
	for _, tm := range f.TrafficManagement {
		if tm == nil || !forTarget(tm.Targets, target) {
			continue
		}
		for _, s := range tm.SMI {
			tr.SMI = append(tr.SMI, SMITraffic{RootService: s.RootServiceName, CanaryService: s.CanaryServiceName, TrafficSplit: s.TrafficSplitName})
		}
		for _, i := range tm.Istio {
			it := IstioTraffic{VirtualService: i.VirtualService.Name, Route: i.VirtualService.HTTPRouteName}
			if dr := i.DestinationRule; dr != nil {
				it.DestinationRule, it.ActiveSubset, it.CanarySubset = dr.Name, dr.ActiveSubsetName, dr.CanarySubsetName
			}
			tr.Istio = append(tr.Istio, it)
		}
		for _, h := range tm.HTTPRoute {
			tr.HTTPRoute = append(tr.HTTPRoute, HTTPRouteTraffic{Name: h.Name, RootService: h.RootServiceName, CanaryService: h.CanaryServiceName})
		}
	}
	if len(tr.SMI)+len(tr.Istio)+len(tr.HTTPRoute) == 0 {
		return nil
	}
	return &tr
}
