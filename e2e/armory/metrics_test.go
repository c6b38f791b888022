package armory

import (
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	listersv1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// The values the exporter gives every pod, chosen against the corpus's
// limits: avgCPUUsage-fail (upper 0.001) passes only on a pod's own
// 0.0005, and avgCPUUsage-pass is that value too when the replica-set
// filter matched, and the "or vector(0)" fallback, 0, when it did not.
const (
	cpuSystemSeconds = 0.0005
	cpuUserPerSecond = 0.05 // container_cpu_user_seconds_total grows so: rate*100 = 5
	workingSetBytes  = 35 << 20
	memoryLimitBytes = 70 << 20
)

// podSeries serves, for every pod of the cluster at scrape time, what
// kube-state-metrics (kube_pod_annotations, every annotation allowed, as
// `--metric-annotations-allowlist=pods=[*]`) and the kubelet's cAdvisor
// (container_* per container) would: kwok runs no kubelet and no
// kube-state-metrics, so this collector stands in for both, from the real
// pods the agents' deployments made. The corpus's queries join the two on
// pod and filter on annotation_deploy_armory_io_replica_set_name, so which
// pods carry Sortie's deploy.armory.io/replica-set-name decides what they
// measure.
//
// It reads the pods from an informer's cache, not the API server, so a
// scrape (1 s timeout) never waits on a loaded machine's API server: a
// failed scrape would leave a judgment's window without samples.
type podSeries struct {
	pods listersv1.PodLister
}

// newPodSeries starts the informer and waits until its cache is filled.
func newPodSeries(t *testing.T, kube kubernetes.Interface) podSeries {
	t.Helper()
	f := informers.NewSharedInformerFactory(kube, 0)
	pods := f.Core().V1().Pods()
	lister := pods.Lister()
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	f.Start(stop)
	if !cache.WaitForCacheSync(stop, pods.Informer().HasSynced) {
		t.Fatal("the pods' informer did not sync")
	}
	return podSeries{pods: lister}
}

var labelChar = regexp.MustCompile(`[^a-zA-Z0-9_]`)

// annotationLabel is kube-state-metrics' label for an annotation.
func annotationLabel(key string) string { return "annotation_" + labelChar.ReplaceAllString(key, "_") }

// Describe sends nothing: the annotation labels are known only at scrape
// time (an unchecked collector).
func (podSeries) Describe(chan<- *prometheus.Desc) {}

func (c podSeries) Collect(ch chan<- prometheus.Metric) {
	list, err := c.pods.List(labels.Everything())
	if err != nil {
		ch <- prometheus.NewInvalidMetric(prometheus.NewDesc("kube_pod_annotations", "", nil, nil), err)
		return
	}
	var pods []*corev1.Pod
	keys := map[string]bool{}
	for _, p := range list {
		if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
			continue
		}
		pods = append(pods, p)
		for k := range p.Annotations {
			keys[annotationLabel(k)] = true
		}
	}
	// One family has one set of label names: every annotation label of
	// any pod, empty where a pod lacks it, as kube-state-metrics does.
	var names []string
	for k := range keys {
		names = append(names, k)
	}
	slices.Sort(names)
	annotations := prometheus.NewDesc("kube_pod_annotations", "Kubernetes annotations converted to Prometheus labels.",
		append([]string{"job", "namespace", "pod"}, names...), nil)
	perContainer := []string{"job", "namespace", "pod", "container"}
	system := prometheus.NewDesc("container_cpu_system_seconds_total", "Cumulative system cpu time consumed in seconds.", perContainer, nil)
	user := prometheus.NewDesc("container_cpu_user_seconds_total", "Cumulative user cpu time consumed in seconds.", perContainer, nil)
	working := prometheus.NewDesc("container_memory_working_set_bytes", "Current working set in bytes.", perContainer, nil)
	limit := prometheus.NewDesc("container_spec_memory_limit_bytes", "Memory limit for the container.", perContainer, nil)
	now := time.Now()
	for _, p := range pods {
		values := []string{"kube-state-metrics", p.Namespace, p.Name}
		for _, n := range names {
			v := ""
			for k, av := range p.Annotations {
				if annotationLabel(k) == n {
					v = av
				}
			}
			values = append(values, v)
		}
		ch <- prometheus.MustNewConstMetric(annotations, prometheus.GaugeValue, 1, values...)
		for _, ct := range p.Spec.Containers {
			lv := []string{"kubelet", p.Namespace, p.Name, ct.Name}
			ch <- prometheus.MustNewConstMetric(system, prometheus.CounterValue, cpuSystemSeconds, lv...)
			ch <- prometheus.MustNewConstMetric(user, prometheus.CounterValue, cpuUserPerSecond*now.Sub(p.CreationTimestamp.Time).Seconds(), lv...)
			ch <- prometheus.MustNewConstMetric(working, prometheus.GaugeValue, workingSetBytes, lv...)
			ch <- prometheus.MustNewConstMetric(limit, prometheus.GaugeValue, memoryLimitBytes, lv...)
		}
	}
}
