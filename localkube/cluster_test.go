package localkube_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/utils/ptr"

	"github.com/sortie-cd/sortie/kubetest"
	"github.com/sortie-cd/sortie/localkube"
)

func TestMain(m *testing.M) { kubetest.Main(m) }

func deployment(name, image string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
			},
		},
	}
}

// waitRolledOut watches the Deployment until the controller has observed its
// latest generation and every replica is updated, ready and available — what
// `kubectl rollout status` waits for.
func waitRolledOut(t *testing.T, client kubernetes.Interface, ns, name string) *appsv1.Deployment {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lw := cache.NewListWatchFromClient(client.AppsV1().RESTClient(), "deployments", ns, fields.OneTermEqualSelector("metadata.name", name))
	ev, err := watchtools.UntilWithSync(ctx, lw, &appsv1.Deployment{}, nil, func(ev watch.Event) (bool, error) {
		d, ok := ev.Object.(*appsv1.Deployment)
		if !ok {
			return false, nil
		}
		want := *d.Spec.Replicas
		s := d.Status
		return s.ObservedGeneration >= d.Generation && s.Replicas == want && s.UpdatedReplicas == want &&
			s.ReadyReplicas == want && s.AvailableReplicas == want, nil
	})
	if err != nil {
		t.Fatalf("deployment %s/%s did not roll out: %v", ns, name, err)
	}
	return ev.Object.(*appsv1.Deployment)
}

func readyPods(t *testing.T, client kubernetes.Interface, ns, selector string) map[string]string {
	t.Helper()
	pods, err := client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	images := map[string]string{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				images[p.Name] = p.Spec.Containers[0].Image
			}
		}
	}
	return images
}

func TestDeploymentBecomesReady(t *testing.T) {
	client := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	ctx := context.Background()
	if _, err := client.AppsV1().Deployments(ns).Create(ctx, deployment("web", "nginx:1.27", 4), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRolledOut(t, client, ns, "web")
	pods := readyPods(t, client, ns, "app=web")
	if len(pods) != 4 {
		t.Fatalf("ready pods = %d (%v), want 4", len(pods), pods)
	}
}

func TestDeploymentRollingUpdateCompletes(t *testing.T) {
	client := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	ctx := context.Background()
	if _, err := client.AppsV1().Deployments(ns).Create(ctx, deployment("web", "nginx:1.27", 3), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	before := waitRolledOut(t, client, ns, "web")

	d, err := client.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d.Spec.Template.Spec.Containers[0].Image = "nginx:1.28"
	if _, err := client.AppsV1().Deployments(ns).Update(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	after := waitRolledOut(t, client, ns, "web")
	if after.Generation <= before.Generation {
		t.Fatalf("generation did not advance: %d -> %d", before.Generation, after.Generation)
	}
	pods := readyPods(t, client, ns, "app=web")
	if len(pods) != 3 {
		t.Fatalf("ready pods = %d, want 3: %v", len(pods), pods)
	}
	for name, image := range pods {
		if image != "nginx:1.28" {
			t.Errorf("pod %s runs %s after the rollout, want nginx:1.28", name, image)
		}
	}
	rss, err := client.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rss.Items) != 2 {
		t.Fatalf("replica sets = %d, want 2 (old scaled to zero, new)", len(rss.Items))
	}
	for _, rs := range rss.Items {
		img := rs.Spec.Template.Spec.Containers[0].Image
		if img == "nginx:1.27" && *rs.Spec.Replicas != 0 {
			t.Errorf("old replica set %s still wants %d replicas", rs.Name, *rs.Spec.Replicas)
		}
	}
}

func TestNamespacesAreIsolated(t *testing.T) {
	a, b := kubetest.Namespace(t), kubetest.Namespace(t)
	if a == b {
		t.Fatalf("two namespaces with the same name %q", a)
	}
}

func TestFailLabelKeepsPodsFromReady(t *testing.T) {
	client := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d := deployment("broken", "nginx:does-not-exist", 2)
	d.Spec.Template.Labels[localkube.FailLabel] = "ImagePullBackOff"
	if _, err := client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	lw := cache.NewListWatchFromClient(client.CoreV1().RESTClient(), "pods", ns, fields.Everything())
	waiting := map[string]string{}
	_, err := watchtools.UntilWithSync(ctx, lw, &corev1.Pod{}, nil, func(ev watch.Event) (bool, error) {
		p, ok := ev.Object.(*corev1.Pod)
		if !ok {
			return false, nil
		}
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Ready {
				return false, fmt.Errorf("pod %s became ready", p.Name)
			}
			if cs.State.Waiting != nil {
				waiting[p.Name] = cs.State.Waiting.Reason
			}
		}
		return len(waiting) == 2, nil
	})
	if err != nil {
		t.Fatalf("pods did not report their failure: %v (seen %v)", err, waiting)
	}
	for pod, reason := range waiting {
		if reason != "ImagePullBackOff" {
			t.Errorf("pod %s waits with %q, want ImagePullBackOff", pod, reason)
		}
	}
	got, err := client.AppsV1().Deployments(ns).Get(ctx, "broken", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.ReadyReplicas != 0 {
		t.Errorf("ready replicas = %d, want 0", got.Status.ReadyReplicas)
	}
}
