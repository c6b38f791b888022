package main

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// quiet tells when the cluster's controllers are done with what the last
// rollout asked of them: every Deployment and ReplicaSet's status has
// caught up with its spec and no pod is being deleted. A rollout started
// before that shares the controllers with the tail of the previous one
// (the ReplicaSet controller's status updates, which its client-side limit
// makes wait).
type quiet struct {
	deployments, replicaSets, pods cache.Store
	changed                        chan struct{}
	stop                           context.CancelFunc
}

func newQuiet(ctx context.Context, c kubernetes.Interface) (*quiet, error) {
	ctx, cancel := context.WithCancel(ctx)
	f := informers.NewSharedInformerFactory(c, 0)
	q := &quiet{changed: make(chan struct{}, 1), stop: cancel}
	poke := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { q.poke() },
		UpdateFunc: func(any, any) { q.poke() },
		DeleteFunc: func(any) { q.poke() },
	}
	for _, inf := range []cache.SharedIndexInformer{f.Apps().V1().Deployments().Informer(), f.Apps().V1().ReplicaSets().Informer(), f.Core().V1().Pods().Informer()} {
		if _, err := inf.AddEventHandler(poke); err != nil {
			cancel()
			return nil, err
		}
	}
	q.deployments = f.Apps().V1().Deployments().Informer().GetStore()
	q.replicaSets = f.Apps().V1().ReplicaSets().Informer().GetStore()
	q.pods = f.Core().V1().Pods().Informer().GetStore()
	f.Start(ctx.Done())
	for typ, ok := range f.WaitForCacheSync(ctx.Done()) {
		if !ok {
			cancel()
			return nil, fmt.Errorf("watch of %v: %w", typ, ctx.Err())
		}
	}
	return q, nil
}

func (q *quiet) poke() {
	select {
	case q.changed <- struct{}{}:
	default:
	}
}

// wait returns once the cluster is quiet, then after idle more.
func (q *quiet) wait(ctx context.Context, idle time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, rolloutLimit)
	defer cancel()
	for !q.holds() {
		select {
		case <-q.changed:
		case <-ctx.Done():
			return fmt.Errorf("the cluster did not settle: %w", ctx.Err())
		}
	}
	if idle > 0 {
		select {
		case <-time.After(idle):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (q *quiet) holds() bool {
	for _, o := range q.deployments.List() {
		d := o.(*appsv1.Deployment)
		if d.Status.ObservedGeneration < d.Generation || !rolledOutStatus(d) {
			return false
		}
	}
	for _, o := range q.replicaSets.List() {
		rs := o.(*appsv1.ReplicaSet)
		want := int32(1)
		if rs.Spec.Replicas != nil {
			want = *rs.Spec.Replicas
		}
		s := rs.Status
		if s.ObservedGeneration < rs.Generation || s.Replicas != want || s.ReadyReplicas != want || s.AvailableReplicas != want {
			return false
		}
	}
	for _, o := range q.pods.List() {
		if o.(*corev1.Pod).DeletionTimestamp != nil {
			return false
		}
	}
	return true
}

func rolledOutStatus(d *appsv1.Deployment) bool {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	s := d.Status
	return s.Replicas == want && s.UpdatedReplicas == want && s.ReadyReplicas == want && s.AvailableReplicas == want
}
