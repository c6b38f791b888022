package kube

import (
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// The order in which the ReplicaSet controller deletes pods, as Sortie
// reproduces it to pick the same ones.
func TestDeletionOrder(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) metav1.Time { return metav1.NewTime(now.Add(-d)) }
	pod := func(name string, mod func(p *corev1.Pod)) corev1.Pod {
		p := corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID(name), CreationTimestamp: ago(time.Hour)},
			Spec:       corev1.PodSpec{NodeName: "n1"},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{
				{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: ago(time.Hour)},
			}},
		}
		if mod != nil {
			mod(&p)
		}
		return p
	}
	pods := []corev1.Pod{
		pod("old", nil),
		pod("restarted", func(p *corev1.Pod) {
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{RestartCount: 3}}
		}),
		pod("ready-lately", func(p *corev1.Pod) { p.Status.Conditions[0].LastTransitionTime = ago(10 * time.Second) }),
		// Ready 11 s ago: the same step of the logarithmic scale as 10 s
		// (2^33 ns ≈ 8.6 s to 17.2 s), so the UID decides.
		pod("a-ready-lately", func(p *corev1.Pod) { p.Status.Conditions[0].LastTransitionTime = ago(11 * time.Second) }),
		pod("marked", func(p *corev1.Pod) {
			p.Annotations = map[string]string{AnnotationPodDeletionCost: lowestDeletionCost}
		}),
		pod("not-ready", func(p *corev1.Pod) { p.Status.Conditions[0].Status = corev1.ConditionFalse }),
		pod("pending", func(p *corev1.Pod) { p.Status.Phase = corev1.PodPending }),
		pod("unscheduled", func(p *corev1.Pod) { p.Spec.NodeName = ""; p.Status.Phase = corev1.PodPending }),
	}
	slices.Reverse(pods)
	slices.SortStableFunc(pods, deletionOrder(pods, now))
	var got []string
	for _, p := range pods {
		got = append(got, p.Name)
	}
	want := []string{"unscheduled", "pending", "not-ready", "marked", "a-ready-lately", "ready-lately", "restarted", "old"}
	if !slices.Equal(got, want) {
		t.Errorf("deletion order %v, want %v", got, want)
	}
}
