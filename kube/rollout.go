package kube

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
)

// NotReadyError says that a workload did not become Ready in time, and why,
// as far as the pods tell.
type NotReadyError struct {
	Namespace, Name string
	Ready, Want     int32
	// Reasons summarise why pods are not Ready, most frequent first, for
	// example "2 pods: ImagePullBackOff (image nginx:nope)".
	Reasons []string
	Err     error
}

func (e *NotReadyError) Error() string {
	msg := fmt.Sprintf("deployment %s/%s: %d of %d pods ready", e.Namespace, e.Name, e.Ready, e.Want)
	if len(e.Reasons) > 0 {
		msg += ": " + strings.Join(e.Reasons, "; ")
	}
	if e.Err != nil && !errors.Is(e.Err, context.DeadlineExceeded) && !errors.Is(e.Err, context.Canceled) && !errors.Is(e.Err, watchtools.ErrWatchClosed) {
		msg += " (" + e.Err.Error() + ")"
	}
	return msg
}

func (e *NotReadyError) Unwrap() error { return e.Err }

// rolledOut is what `kubectl rollout status` waits for: the controller saw
// the latest spec, every replica runs it and is available, no old pod is left.
func rolledOut(d *appsv1.Deployment) bool {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	s := d.Status
	return s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == want && s.Replicas == want &&
		s.ReadyReplicas == want && s.AvailableReplicas == want
}

// waitRolledOut watches the Deployment until it has rolled out. When ctx
// ends first, the error is a *NotReadyError with the pods' reasons.
func (e *Executor) waitRolledOut(ctx context.Context, ns, name string) (*appsv1.Deployment, error) {
	var last *appsv1.Deployment
	err := func() error {
		d, err := e.client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if last = d; rolledOut(d) {
			return nil
		}
		byName := fields.OneTermEqualSelector("metadata.name", name).String()
		return watchFrom(ctx, d.ResourceVersion, func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = byName
			return e.client.AppsV1().Deployments(ns).Watch(ctx, o)
		}, func(ev watch.Event) (bool, error) {
			d, ok := ev.Object.(*appsv1.Deployment)
			if !ok {
				return false, nil
			}
			if ev.Type == watch.Deleted {
				return false, fmt.Errorf("deployment %s/%s was deleted", ns, name)
			}
			last = d
			return rolledOut(d), nil
		})
	}()
	if err == nil {
		return last, nil
	}
	nre := &NotReadyError{Namespace: ns, Name: name, Err: err}
	if last != nil {
		nre.Ready = last.Status.ReadyReplicas
		nre.Want = 1
		if last.Spec.Replicas != nil {
			nre.Want = *last.Spec.Replicas
		}
		// ctx is over; ask with a fresh one, briefly, what the pods say.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), reasonTimeout)
		nre.Reasons = e.notReadyReasons(rctx, last)
		cancel()
	}
	return nil, nre
}

// notReadyReasons summarises why the Deployment's pods are not Ready:
// container waiting reasons (image pull, crash loop), unschedulable pods, and
// the Deployment's own failure conditions (quota).
func (e *Executor) notReadyReasons(ctx context.Context, d *appsv1.Deployment) []string {
	counts := map[string]int{}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentReplicaFailure && c.Status == corev1.ConditionTrue {
			counts[fmt.Sprintf("%s: %s", c.Reason, c.Message)]++
		}
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err == nil {
		pods, err := e.client.CoreV1().Pods(d.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
		if err == nil {
			for _, p := range pods.Items {
				if r := podReason(&p); r != "" {
					counts[r]++
				}
			}
		}
	}
	return summarise(counts)
}

// summarise turns counts of reasons into sentences, sorted.
func summarise(counts map[string]int) []string {
	reasons := make([]string, 0, len(counts))
	for r, n := range counts {
		if n > 1 {
			r = fmt.Sprintf("%d pods: %s", n, r)
		}
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	return reasons
}

func podReason(p *corev1.Pod) string {
	if p.DeletionTimestamp != nil {
		return ""
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			return fmt.Sprintf("Unschedulable: %s", c.Message)
		}
	}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Ready {
			continue
		}
		switch {
		case cs.State.Waiting != nil && cs.State.Waiting.Reason != "":
			return fmt.Sprintf("%s (container %s, image %s)", cs.State.Waiting.Reason, cs.Name, cs.Image)
		case cs.State.Terminated != nil:
			return fmt.Sprintf("%s, exit code %d (container %s)", cs.State.Terminated.Reason, cs.State.Terminated.ExitCode, cs.Name)
		}
	}
	if p.Status.Phase == corev1.PodPending {
		return "Pending"
	}
	return ""
}

// waitDeploymentGone watches until the Deployment object is gone; with
// foreground deletion that is after its ReplicaSets and pods are.
func (e *Executor) waitDeploymentGone(ctx context.Context, ns, name string) error {
	lw := cache.NewListWatchFromClient(e.client.AppsV1().RESTClient(), "deployments", ns, fields.OneTermEqualSelector("metadata.name", name))
	_, err := watchtools.UntilWithSync(ctx, lw, &appsv1.Deployment{}, func(s cache.Store) (bool, error) {
		return len(s.List()) == 0, nil
	}, func(ev watch.Event) (bool, error) {
		return ev.Type == watch.Deleted, nil
	})
	if err != nil {
		return fmt.Errorf("kube: deployment %s/%s not deleted: %w", ns, name, err)
	}
	return nil
}

// waitPods watches the pods of ns that sel selects until exactly want of
// those that match are running (not being deleted), all of them Ready: the
// state a scaling of name (a Deployment or ReplicaSet) is for, seen on the
// pods themselves as soon as it holds, rather than when the controllers'
// status catches up. When ctx ends first, the error is a *NotReadyError
// with the pods' reasons.
func (e *Executor) waitPods(ctx context.Context, ns, name string, sel labels.Selector, want int32, match func(*corev1.Pod) bool) error {
	pods := map[string]*corev1.Pod{}
	var running, ready int32
	holds := func() bool {
		running, ready = 0, 0
		for _, p := range pods {
			if p.DeletionTimestamp != nil || !match(p) {
				continue
			}
			running++
			if podReady(p.Status.Conditions) {
				ready++
			}
		}
		return running == want && ready == want
	}
	err := func() error {
		// From the API server's cache: the counts it waits for differ from
		// those before the caller's write, so an older view cannot pass.
		list, err := e.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String(), ResourceVersion: "0"})
		if err != nil {
			return err
		}
		for i := range list.Items {
			pods[list.Items[i].Name] = &list.Items[i]
		}
		if holds() {
			return nil
		}
		return watchFrom(ctx, list.ResourceVersion, func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = sel.String()
			return e.client.CoreV1().Pods(ns).Watch(ctx, o)
		}, func(ev watch.Event) (bool, error) {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				return false, nil
			}
			if ev.Type == watch.Deleted {
				delete(pods, p.Name)
			} else {
				pods[p.Name] = p
			}
			return holds(), nil
		})
	}()
	if err == nil {
		return nil
	}
	nre := &NotReadyError{Namespace: ns, Name: name, Ready: ready, Want: want, Err: err}
	counts := map[string]int{}
	for _, p := range pods {
		if match(p) {
			if r := podReason(p); r != "" {
				counts[r]++
			}
		}
	}
	nre.Reasons = summarise(counts)
	return nre
}
