package kube

import (
	"cmp"
	"math"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// deletionOrder orders a ReplicaSet's active pods as its controller ranks
// them for deletion when it scales down, first to go first (Kubernetes
// 1.37, controller.ActivePodsWithRanks with PodDeletionCost and
// LogarithmicScaleDown, both on by default): unscheduled before scheduled;
// Pending, then Unknown, then Running; not Ready before Ready; lower
// pod-deletion-cost first; more pods of the same owner on its node first;
// Ready for less time first, and more restarts first, and newer first,
// times compared on a base-2 logarithmic scale of their age at now, with
// the pod's UID deciding within a step of that scale. Sortie picks the
// pods it retires in this order so that, should the controller not have
// read the mark yet, it picks the same ones; ties that the controller
// leaves to chance, the mark decides.
func deletionOrder(pods []corev1.Pod, now time.Time) func(a, b corev1.Pod) int {
	onNode := map[string]int{}
	for _, p := range pods {
		onNode[p.Spec.NodeName]++
	}
	at := metav1.NewTime(now)
	return func(a, b corev1.Pod) int {
		if (a.Spec.NodeName == "") != (b.Spec.NodeName == "") {
			return boolFirst(a.Spec.NodeName == "")
		}
		if d := cmp.Compare(phaseOrdinal(a.Status.Phase), phaseOrdinal(b.Status.Phase)); d != 0 {
			return d
		}
		ra, rb := podReady(a.Status.Conditions), podReady(b.Status.Conditions)
		if ra != rb {
			return boolFirst(!ra)
		}
		if d := cmp.Compare(deletionCost(&a), deletionCost(&b)); d != 0 {
			return d
		}
		if d := cmp.Compare(onNode[b.Spec.NodeName], onNode[a.Spec.NodeName]); d != 0 {
			return d
		}
		if ra && rb {
			ta, tb := readySince(&a), readySince(&b)
			if !ta.Equal(&tb) {
				return newerFirst(ta, tb, at, a.UID < b.UID)
			}
		}
		if d := cmp.Compare(maxRestarts(&b), maxRestarts(&a)); d != 0 {
			return d
		}
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return newerFirst(a.CreationTimestamp, b.CreationTimestamp, at, a.UID < b.UID)
		}
		return 0
	}
}

func boolFirst(aFirst bool) int {
	if aFirst {
		return -1
	}
	return 1
}

func phaseOrdinal(p corev1.PodPhase) int {
	switch p {
	case corev1.PodUnknown:
		return 1
	case corev1.PodRunning:
		return 2
	}
	return 0
}

// deletionCost is the pod's pod-deletion-cost, 0 when unset or unreadable.
func deletionCost(p *corev1.Pod) int64 {
	c, err := strconv.ParseInt(p.Annotations[AnnotationPodDeletionCost], 10, 32)
	if err != nil {
		return 0
	}
	return c
}

func readySince(p *corev1.Pod) metav1.Time {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return c.LastTransitionTime
		}
	}
	return metav1.Time{}
}

func maxRestarts(p *corev1.Pod) int32 {
	var most int32
	for _, c := range p.Status.ContainerStatuses {
		most = max(most, c.RestartCount)
	}
	return most
}

// newerFirst orders a before b when a is the newer time: an unset time
// first, then on the logarithmic scale of the ages at now, uidFirst within
// one step of it.
func newerFirst(a, b, now metav1.Time, uidFirst bool) int {
	if a.IsZero() || b.IsZero() {
		return boolFirst(a.IsZero())
	}
	d := logRank(now.Sub(a.Time)) - logRank(now.Sub(b.Time))
	if d == 0 {
		return boolFirst(uidFirst)
	}
	return cmp.Compare(d, 0)
}

func logRank(age time.Duration) int64 {
	if age <= 0 {
		return -1
	}
	return int64(math.Log2(float64(age)))
}
