package kubetest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestMain(m *testing.M) { Main(m) }

// probeEnv, set in a child test binary, lets the probe tests run.
const probeEnv = "KUBETEST_PROBE"

var startedIn = regexp.MustCompile(`kubetest: started a local cluster in (\S+)`)

// TestProbeNoCluster asks for no cluster.
func TestProbeNoCluster(t *testing.T) {
	if os.Getenv(probeEnv) == "" {
		t.Skip("run in a child binary by TestClusterOnlyWhenAsked")
	}
}

// TestProbeCluster uses the cluster, then passes, fails or panics as
// probeEnv says.
func TestProbeCluster(t *testing.T) {
	mode := os.Getenv(probeEnv)
	if mode == "" {
		t.Skip("run in a child binary by TestClusterOnlyWhenAsked")
	}
	// A test may move HOME and the working directory before it first asks
	// for the cluster (the CLI's do): the cluster still comes from the
	// repository's tools and the machine's cache, as Main found them.
	t.Setenv("HOME", t.TempDir())
	t.Setenv("XDG_CACHE_HOME", "")
	t.Chdir(t.TempDir())
	Namespace(t)
	// The parent's check finds the components while they run (else
	// finding none afterwards would prove nothing).
	if running := processesOf(t, Cluster(t).Dir); len(running) < 5 {
		t.Fatalf("the running cluster's processes: %v, want etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok", running)
	}
	switch mode {
	case "fail":
		t.Error("the probe fails on purpose")
	case "panic":
		panic("the probe panics on purpose")
	}
}

// A test binary starts a cluster only when a test asks for one, and none
// of its processes outlives the binary: after a pass, a failure (which
// prints the components' logs) or a panic.
func TestClusterOnlyWhenAsked(t *testing.T) {
	if os.Getenv(probeEnv) != "" {
		t.Skip("the parent test")
	}
	child := func(test, mode string) (string, error) {
		t.Helper()
		cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), probeEnv+"="+mode)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}

	out, err := child("TestProbeNoCluster", "pass")
	if err != nil || !strings.Contains(out, "--- PASS: TestProbeNoCluster") {
		t.Fatalf("the probe without a cluster: %v\n%s", err, out)
	}
	if startedIn.MatchString(out) {
		t.Errorf("a test binary whose tests need no cluster started one:\n%s", out)
	}

	for _, mode := range []string{"pass", "fail", "panic"} {
		out, err := child("TestProbeCluster", mode)
		if (err == nil) != (mode == "pass") {
			t.Errorf("%s: the probe binary ended with %v\n%s", mode, err, out)
		}
		m := startedIn.FindStringSubmatch(out)
		if m == nil {
			t.Errorf("%s: the probe asked for a namespace, yet no cluster started:\n%s", mode, out)
			continue
		}
		if mode == "fail" && !strings.Contains(out, "cluster logs") {
			t.Errorf("a failed test printed no cluster logs:\n%s", out)
		}
		if left := processesOf(t, m[1]); len(left) > 0 {
			t.Errorf("%s: processes of the cluster in %s outlived the test binary: %s", mode, m[1], strings.Join(left, "; "))
		}
	}
}

// processesOf lists the live processes whose command line names dir. A
// process with SIGKILL pending (Pdeathsig has fired; it dies on its next
// scheduling) or a zombie does not count.
func processesOf(t *testing.T, dir string) []string {
	t.Helper()
	procs, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, p := range procs {
		cmdline, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(cmdline, []byte(dir)) {
			continue
		}
		status, err := os.ReadFile(filepath.Join(filepath.Dir(p), "status"))
		if err != nil || dying(string(status)) {
			continue
		}
		left = append(left, filepath.Base(filepath.Dir(p))+" "+string(bytes.ReplaceAll(cmdline, []byte{0}, []byte(" "))))
	}
	return left
}

// dying reports whether a /proc/<pid>/status is a zombie's or shows
// SIGKILL pending.
func dying(status string) bool {
	const sigkill = 1 << (9 - 1)
	for line := range strings.Lines(status) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		v = strings.TrimSpace(v)
		switch k {
		case "State":
			if strings.HasPrefix(v, "Z") || strings.HasPrefix(v, "X") {
				return true
			}
		case "SigPnd", "ShdPnd":
			if mask, err := strconv.ParseUint(v, 16, 64); err == nil && mask&sigkill != 0 {
				return true
			}
		}
	}
	return false
}
