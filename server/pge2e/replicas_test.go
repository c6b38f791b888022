package pge2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/client"
	"github.com/sortie-cd/sortie/client/clienttest"
	"github.com/sortie-cd/sortie/internal/proctest"
	"github.com/sortie-cd/sortie/kubetest"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
	"github.com/sortie-cd/sortie/store/postgres"
	"github.com/sortie-cd/sortie/store/postgres/pgtest"
	"github.com/sortie-cd/sortie/store/storetest"
)

var (
	listening = regexp.MustCompile(`msg="sortie server listening" addr=(\S+)`)
	claimed   = regexp.MustCompile(`msg="claimed pipelines" replica=(\S+)`)
)

// replica is one `sortie dev` process of the three (the in-process kube
// executor on the test cluster, the data in the shared database).
type replica struct {
	id, addr, data string
	proc           *proctest.Proc
	c              *client.Client
}

type replicas struct {
	t     *testing.T
	env   []string
	url   string
	kc    string
	admin auth.CredentialsFile
	rs    []*replica
}

func (x *replicas) start(r *replica) {
	x.t.Helper()
	addr := r.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	r.proc = proctest.Start(x.t, r.id, x.env, "dev", "--addr", addr, "--data-dir", r.data, "--database-url", x.url,
		"--replica-id", r.id, "--lease-ttl", "2s", "--kubeconfig", x.kc)
	r.addr = r.proc.WaitLine(listening)[1]
}

func (x *replicas) client(r *replica) *client.Client {
	x.t.Helper()
	c, err := client.New(client.Options{Server: "http://" + r.addr, ClientID: x.admin.ClientID, ClientSecret: x.admin.ClientSecret})
	if err != nil {
		x.t.Fatal(err)
	}
	return c
}

// kill kills the replica with SIGKILL, as a machine that dies does.
func (x *replicas) kill(r *replica) { r.proc.Stop(syscall.SIGKILL) }

// owner waits until a replica other than dead claims the pipeline and
// returns it, with the time since since.
func (x *replicas) owner(dead *replica, since time.Time) (*replica, time.Duration) {
	x.t.Helper()
	var alive []*replica
	var procs []*proctest.Proc
	for _, r := range x.rs {
		if r != dead {
			alive = append(alive, r)
			procs = append(procs, r.proc)
		}
	}
	i, _ := proctest.WaitAny(x.t, claimed, procs...)
	return alive[i], time.Since(since)
}

// TestThreeReplicasSurviveKills runs three `sortie dev` replicas on one
// PostgreSQL database and the test cluster. A canary with timed pauses
// starts on one; its owner is killed with SIGKILL at each pause, another
// replica takes the pipeline over when the lease expires, and the killed
// one is started again. The pipeline ends SUCCEEDED, the cluster is as
// the canary leaves it, and the events show no command result twice and
// no step started twice.
func TestThreeReplicasSurviveKills(t *testing.T) {
	url := pgtest.Database(t)
	kc := kubetest.Cluster(t).Kubeconfig
	ns := kubetest.Namespace(t)
	key := make([]byte, 32)
	rand.Read(key)
	x := &replicas{t: t, url: url, kc: kc, env: []string{"SORTIE_MASTER_KEY=" + base64.StdEncoding.EncodeToString(key)}}
	for i := range 3 {
		x.rs = append(x.rs, &replica{id: fmt.Sprintf("r%d", i), data: t.TempDir()})
	}
	// The first writes the bootstrap credential; the others find it in
	// the database.
	x.start(x.rs[0])
	b, err := os.ReadFile(filepath.Join(x.rs[0].data, auth.AdminCredentialsFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &x.admin); err != nil {
		t.Fatal(err)
	}
	x.start(x.rs[1])
	x.start(x.rs[2])
	for _, r := range x.rs {
		r.c = x.client(r)
	}

	ctx := context.Background()
	first, err := x.rs[0].c.StartPipeline(ctx, canary(ns, "web:v1"))
	if err != nil {
		t.Fatal(err)
	}
	if p := clienttest.WaitEnd(t, x.rs[0].c, first.PipelineID); p.Status != pipeline.StatusSucceeded {
		t.Fatalf("first deployment ended %s\n%s", p.Status, clienttest.Dump(p))
	}
	res, err := x.rs[0].c.StartPipeline(ctx, canary(ns, "web:v2"))
	if err != nil {
		t.Fatal(err)
	}
	id := res.PipelineID
	owner := x.rs[0] // the replica that created it leases it
	var takeovers []time.Duration
	for _, weight := range []int{25, 50, 75} {
		clienttest.WaitPipeline(t, owner.c, id, fmt.Sprintf("paused at %d%%", weight), func(p *api.PipelineView) bool {
			return len(p.Targets) == 1 && p.Targets[0].AchievedWeight >= weight
		})
		for _, r := range x.rs {
			r.proc.Drain()
		}
		killed := time.Now()
		x.kill(owner)
		next, took := x.owner(owner, killed)
		takeovers = append(takeovers, took)
		t.Logf("takeover at %d%%: %s killed, %s claimed the pipeline %v later (lease TTL 2s)", weight, owner.id, next.id, took.Round(time.Millisecond))
		x.start(owner) // again, on its address and data directory
		owner.c = x.client(owner)
		owner = next
	}
	t.Logf("takeover times after kill -9: %v", takeovers)
	p := clienttest.WaitEnd(t, owner.c, id)
	if p.Status != pipeline.StatusSucceeded {
		t.Fatalf("canary ended %s\n%s", p.Status, clienttest.Dump(p))
	}

	st, err := postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sp, err := st.GetPipeline(ctx, store.DefaultTenant, id)
	if err != nil {
		t.Fatal(err)
	}
	if sp.Lease.Epoch < 4 {
		t.Errorf("lease epoch %d after three takeovers, want at least 4", sp.Lease.Epoch)
	}
	events, err := st.Events(ctx, store.DefaultTenant, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	storetest.NoStepTwice(t, events)

	kube := kubetest.Client(t)
	pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	images := map[string]int{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			images[p.Spec.Containers[0].Image]++
		}
	}
	if images["web:v2"] != 4 || len(images) != 1 {
		t.Errorf("pods after the canary: %v, want 4 of web:v2", images)
	}
	ds, err := kube.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range ds.Items {
		names = append(names, d.Name+"="+d.Spec.Template.Spec.Containers[0].Image)
	}
	if !slices.Equal(names, []string{"web=web:v2"}) {
		t.Errorf("deployments after the canary: %v, want only the user's, on v2", names)
	}
}

func canary(ns, image string) api.StartRequest {
	return api.StartRequest{FileName: "deploy.yml", File: fmt.Sprintf(`version: v1
kind: kubernetes
application: web
targets:
  staging:
    account: local
    namespace: %s
    strategy: c
strategies:
  c:
    canary:
      steps:
        - setWeight: 25
        - pause: {duration: 3, unit: SECONDS}
        - setWeight: 50
        - pause: {duration: 3, unit: SECONDS}
        - setWeight: 75
        - pause: {duration: 3, unit: SECONDS}
        - setWeight: 100
manifests:
  - inline: |
%s`, ns, kubetest.Inline(kubetest.SampleApp("web", 4, image), kubetest.SampleService("web", "web")))}
}
