package cli

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sortie-cd/sortie/client"
	"github.com/sortie-cd/sortie/kubetest"
)

// TestHelloArmoryManifestsByURL deploys Armory's quick-start,
// cdaas-examples/hello-armory/first-deployment.yaml, whose manifests are
// named by https URL. raw.githubusercontent.com cannot be reached here, so
// a local HTTPS server (httptest's TLS, its CA given with
// --manifest-ca-file) serves the quick-start's manifests at the same paths,
// and the file's URLs are pointed at it; nothing else in the file changes,
// and the server serves the cluster under the file's account. Through the
// CLI and a real server, on the local cluster:
//
//   - without the CA, the certificate is refused: an error naming the file,
//     line, column and URL, and no deployment is created;
//   - with it, both targets deploy the fetched manifests (Namespaces, the
//     Deployment, the Service), each URL fetched once;
//   - with the manifests gone from the web, a redeploy runs from the stored
//     text, fetching nothing, and stores the same manifests; a new start
//     fails naming what the server answered.
func TestHelloArmoryManifestsByURL(t *testing.T) {
	quick := filepath.Join(armoryDir(t), "cdaas-examples", "hello-armory")
	var hits atomic.Int32
	var gone atomic.Bool
	files := http.StripPrefix("/armory-io/cdaas-examples/main/hello-armory/manifests", http.FileServer(http.Dir(filepath.Join(quick, "manifests"))))
	web := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if gone.Load() {
			http.Error(w, "gone", http.StatusGone)
			return
		}
		hits.Add(1)
		files.ServeHTTP(w, r)
	}))
	defer web.Close()
	ca := caFile(t, web)

	e := newE2EFor(t, "my-cdaas-cluster")
	e.ok("login", "--credentials-file", e.credsAt)
	text, err := os.ReadFile(filepath.Join(quick, "first-deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(text), "https://raw.githubusercontent.com/armory-io/cdaas-examples/main/hello-armory/manifests/") {
		t.Fatalf("the quick-start no longer names its manifests by URL:\n%s", text)
	}
	file := filepath.Join(e.dir, "first-deployment.yaml")
	if err := os.WriteFile(file, []byte(strings.ReplaceAll(string(text), "https://raw.githubusercontent.com", web.URL)), 0o644); err != nil {
		t.Fatal(err)
	}
	kube := kubetest.Client(t)
	t.Cleanup(func() {
		for _, ns := range []string{"potato-facts-staging", "potato-facts-prod"} {
			kube.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
		}
	})

	// An untrusted certificate: refused before anything is sent.
	r := e.exit(ExitFailure, "deploy", "start", "-f", file)
	v1 := web.URL + "/armory-io/cdaas-examples/main/hello-armory/manifests/potato-facts-v1.yaml"
	if !regexp.MustCompile(regexp.QuoteMeta(file+`:18:5: manifests[0].path "`+v1+`" cannot be fetched: `) + `.*certificate signed by unknown authority`).MatchString(r.errOut) {
		t.Errorf("an untrusted manifest server:\n%s", r.errOut)
	}
	if out := e.ok("deploy", "list", "-o", "json").out; strings.Contains(out, `"id"`) {
		t.Errorf("a deployment was created:\n%s", out)
	}

	id := decode[startOutput](t, e.ok("deploy", "start", "-f", file, "--manifest-ca-file", ca, "--watch", "-o", "json")).PipelineID
	if got := hits.Load(); got != 4 {
		t.Errorf("%d requests for the 4 manifest URLs", got)
	}
	for _, ns := range []string{"potato-facts-staging", "potato-facts-prod"} {
		d, err := kube.AppsV1().Deployments(ns).Get(e.ctx, "potato-facts", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("%s: %v", ns, err)
		}
		if img := d.Spec.Template.Spec.Containers[0].Image; img != "index.docker.io/armory/potatofacts:v1" || d.Status.ReadyReplicas != 3 {
			t.Errorf("%s: image %s, %d ready", ns, img, d.Status.ReadyReplicas)
		}
		if _, err := kube.CoreV1().Services(ns).Get(e.ctx, "potato-facts", metav1.GetOptions{}); err != nil {
			t.Errorf("%s: %v", ns, err)
		}
	}

	// The web forgets the manifests; the redeploy does not need it.
	gone.Store(true)
	before := hits.Load()
	re := decode[startOutput](t, e.ok("deploy", "start", "-i", id, "--watch", "-o", "json")).PipelineID
	if hits.Load() != before {
		t.Errorf("the redeploy fetched %d manifests", hits.Load()-before)
	}
	c, err := client.New(client.Options{Server: e.server, ClientID: e.creds.ClientID, ClientSecret: e.creds.ClientSecret})
	if err != nil {
		t.Fatal(err)
	}
	first, err := c.GetSource(e.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.GetSource(e.ctx, re)
	if err != nil {
		t.Fatal(err)
	}
	served, _ := os.ReadFile(filepath.Join(quick, "manifests", "potato-facts-v1.yaml"))
	if len(first.Manifests) != 4 || first.Manifests[v1] != string(served) {
		t.Errorf("stored manifests: %d, %s = %q", len(first.Manifests), v1, first.Manifests[v1])
	}
	if diff := cmp.Diff(first.Manifests, again.Manifests); diff != "" || first.File != again.File {
		t.Errorf("the redeploy's source differs (-first +redeploy):\n%s", diff)
	}
	r = e.exit(ExitFailure, "deploy", "start", "-f", file, "--manifest-ca-file", ca)
	if !strings.Contains(r.errOut, file+`:18:5: manifests[0].path "`+v1+`" cannot be fetched: the server answered 410 Gone`) {
		t.Errorf("a manifest the web no longer has:\n%s", r.errOut)
	}
}
