package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// timeline records, for -rollout-timeline, what the cluster shows of one
// rollout: each change of a pod, ReplicaSet or Deployment of a namespace,
// at the time the watch delivered it.
type timeline struct {
	mu     sync.Mutex
	start  time.Time
	lines  []string
	cancel context.CancelFunc
	done   sync.WaitGroup
}

func startTimeline(ctx context.Context, c kubernetes.Interface, ns string) (*timeline, error) {
	ctx, cancel := context.WithCancel(ctx)
	t := &timeline{start: time.Now(), cancel: cancel}
	opens := []func() (watch.Interface, error){
		func() (watch.Interface, error) { return c.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{}) },
		func() (watch.Interface, error) { return c.AppsV1().ReplicaSets(ns).Watch(ctx, metav1.ListOptions{}) },
		func() (watch.Interface, error) { return c.AppsV1().Deployments(ns).Watch(ctx, metav1.ListOptions{}) },
	}
	for _, open := range opens {
		w, err := open()
		if err != nil {
			cancel()
			return nil, err
		}
		t.done.Add(1)
		go func() {
			defer t.done.Done()
			defer w.Stop()
			for {
				select {
				case ev, ok := <-w.ResultChan():
					if !ok {
						return
					}
					t.add(ev)
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	return t, nil
}

func (t *timeline) add(ev watch.Event) {
	at := time.Since(t.start)
	var line string
	switch o := ev.Object.(type) {
	case *corev1.Pod:
		line = fmt.Sprintf("pod %s %s node=%q phase=%s ready=%v deleting=%v", ev.Type, o.Name, o.Spec.NodeName, o.Status.Phase, podIsReady(o), o.DeletionTimestamp != nil)
	case *appsv1.ReplicaSet:
		r := int32(-1)
		if o.Spec.Replicas != nil {
			r = *o.Spec.Replicas
		}
		line = fmt.Sprintf("rs %s %s spec=%d status=%d ready=%d gen=%d/%d", ev.Type, o.Name, r, o.Status.Replicas, o.Status.ReadyReplicas, o.Status.ObservedGeneration, o.Generation)
	case *appsv1.Deployment:
		r := int32(-1)
		if o.Spec.Replicas != nil {
			r = *o.Spec.Replicas
		}
		line = fmt.Sprintf("deploy %s %s spec=%d paused=%v updated=%d ready=%d gen=%d/%d", ev.Type, o.Name, r, o.Spec.Paused, o.Status.UpdatedReplicas, o.Status.ReadyReplicas, o.Status.ObservedGeneration, o.Generation)
	default:
		return
	}
	t.mu.Lock()
	t.lines = append(t.lines, fmt.Sprintf("%6.0f ms  %s", float64(at)/float64(time.Millisecond), line))
	t.mu.Unlock()
}

func podIsReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// print stops the timeline and writes it, with marks (time since the
// start and what happened then) merged in.
func (t *timeline) print(out io.Writer, marks map[time.Duration]string) {
	t.cancel()
	t.done.Wait()
	lines := t.lines
	for at, m := range marks {
		lines = append(lines, fmt.Sprintf("%6.0f ms  -- %s", float64(at)/float64(time.Millisecond), m))
	}
	sort.SliceStable(lines, func(i, j int) bool { return lines[i][:6] < lines[j][:6] })
	for _, l := range lines {
		fmt.Fprintln(out, l)
	}
}
