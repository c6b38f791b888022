package kube

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// LimitNamespaces confines every write of the executor to the listed
// namespaces (an agent's --namespaces): a target in another namespace, an
// object of a target whose manifest names another one, and any
// cluster-scoped object other than a listed Namespace are refused before
// anything is written. No namespaces means no limit (the operator gave the
// agent the whole cluster). Call it before the first operation.
func (e *Executor) LimitNamespaces(namespaces []string) {
	e.namespaces = slices.Clone(namespaces)
	slices.Sort(e.namespaces)
}

// ErrNamespaceNotAllowed is the error of a write the namespace limit
// refuses.
type ErrNamespaceNotAllowed struct {
	What      string
	Namespace string
	Allowed   []string
}

func (e *ErrNamespaceNotAllowed) Error() string {
	return fmt.Sprintf("kube: %s: this agent may write only in namespaces %s, not %q (its --namespaces)", e.What, strings.Join(e.Allowed, ", "), e.Namespace)
}

func (e *Executor) allowedNamespace(what, ns string) error {
	if len(e.namespaces) == 0 || slices.Contains(e.namespaces, ns) {
		return nil
	}
	return &ErrNamespaceNotAllowed{What: what, Namespace: ns, Allowed: e.namespaces}
}

// checkNamespaces refuses a target the namespace limit does not allow,
// object by object, before any write.
func (e *Executor) checkNamespaces(t *Target) error {
	if len(e.namespaces) == 0 {
		return nil
	}
	if err := e.allowedNamespace("target "+t.Target, t.Namespace); err != nil {
		return err
	}
	for _, u := range t.Objects {
		what := u.GetKind() + " " + u.GetName()
		m, err := e.resource(u)
		if err != nil {
			return fmt.Errorf("kube: %s: %w", what, explain(err))
		}
		if m.Scope.Name() != meta.RESTScopeNameNamespace {
			if u.GetKind() == "Namespace" && u.GroupVersionKind().Group == "" {
				if err := e.allowedNamespace(what, u.GetName()); err != nil {
					return err
				}
				continue
			}
			return &ErrNamespaceNotAllowed{What: what + " (cluster-scoped)", Namespace: "", Allowed: e.namespaces}
		}
		if err := e.allowedNamespace(what, objectNamespace(t, u)); err != nil {
			return err
		}
	}
	return nil
}

// objectNamespace is where an object of t is written.
func objectNamespace(t *Target, u *unstructured.Unstructured) string {
	if t.OwnNamespaces {
		return cmp.Or(u.GetNamespace(), metav1.NamespaceDefault)
	}
	return t.Namespace
}
