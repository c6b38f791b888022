package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sortie-cd/sortie/client"
	"github.com/sortie-cd/sortie/client/clienttest"
	"github.com/sortie-cd/sortie/kubetest"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/server"
	"github.com/sortie-cd/sortie/store"
)

// TestScripts runs testdata/script/*.txtar: each line a shell-like command,
// `exec sortie ...` a real sortie process against a real server deploying
// to the local cluster. Besides testscript's own commands:
//
//	expand FILE...        replace $VARS in files with the script's environment
//	capture VAR REGEXP    set VAR to REGEXP's first group in the last stdout
//	waitgate ID           wait (on the event stream) until deployment ID awaits an approval
//	image DEPLOYMENT      print the images of DEPLOYMENT's containers in $NS, as the cluster has them
//
// A sortie that fails prints "[sortie exited N]" last on stderr.
func TestScripts(t *testing.T) {
	srv := clienttest.Start(t, server.Config{Kubeconfig: kubetest.Cluster(t).Kubeconfig, Account: "local"})
	ns := kubetest.Namespace(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	for _, name := range []string{"sortie", "armory"} {
		if err := os.Symlink(exe, filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	entrypoint, err := filepath.Abs(filepath.Join("..", "action", "entrypoint.sh"))
	if err != nil {
		t.Fatal(err)
	}
	kube := kubetest.Client(t)
	admin, err := client.New(client.Options{Server: srv.URL, ClientID: srv.Credentials.ClientID, ClientSecret: srv.Credentials.ClientSecret})
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir: filepath.Join("testdata", "script"),
		Setup: func(env *testscript.Env) error {
			env.Setenv("PATH", bin+string(os.PathListSeparator)+env.Getenv("PATH"))
			env.Setenv("XDG_CONFIG_HOME", filepath.Join(env.WorkDir, ".config"))
			env.Setenv("SERVER", srv.URL)
			env.Setenv("ADMIN_CREDS", srv.CredentialsPath)
			env.Setenv("ADMIN_ID", srv.Credentials.ClientID)
			env.Setenv("ADMIN_SECRET", srv.Credentials.ClientSecret)
			env.Setenv("NS", ns)
			env.Setenv("ACTION_ENTRYPOINT", entrypoint)
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"expand": func(ts *testscript.TestScript, neg bool, args []string) {
				for _, f := range args {
					text := os.Expand(ts.ReadFile(f), ts.Getenv)
					ts.Check(os.WriteFile(ts.MkAbs(f), []byte(text), 0o644))
				}
			},
			"capture": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) != 2 {
					ts.Fatalf("usage: capture VAR REGEXP")
				}
				m := regexp.MustCompile(args[1]).FindStringSubmatch(ts.ReadFile("stdout"))
				if len(m) < 2 {
					ts.Fatalf("capture: %s does not match stdout", args[1])
				}
				ts.Setenv(args[0], m[1])
			},
			// jsonfield FILE KEY VAR: VAR = the string KEY of the JSON
			// object in FILE (stdout for the last command's), as `jq -r .KEY`.
			"jsonfield": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) != 3 {
					ts.Fatalf("usage: jsonfield FILE KEY VAR")
				}
				var doc map[string]any
				ts.Check(json.Unmarshal([]byte(ts.ReadFile(args[0])), &doc))
				v, ok := doc[args[1]].(string)
				if !ok || v == "" {
					ts.Fatalf("%s has no string %q", args[0], args[1])
				}
				ts.Setenv(args[2], v)
			},
			"image": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) != 1 {
					ts.Fatalf("usage: image DEPLOYMENT")
				}
				d, err := kube.AppsV1().Deployments(ns).Get(context.Background(), args[0], metav1.GetOptions{})
				ts.Check(err)
				for _, c := range d.Spec.Template.Spec.Containers {
					fmt.Fprintln(ts.Stdout(), c.Image)
				}
			},
			"waitgate": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) != 1 {
					ts.Fatalf("usage: waitgate ID")
				}
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer cancel()
				err := admin.FollowPipeline(ctx, args[0], 0, client.FollowOptions{}, func(ev store.Event) error {
					var ch pipeline.Change
					if ev.Type == "status" && json.Unmarshal(ev.Data, &ch) == nil {
						if ch.Step != "" && ch.To == pipeline.StatusAwaitingApproval {
							return client.ErrStop
						}
						if ch.Target == "" && ch.To.Terminal() {
							ts.Fatalf("deployment %s ended %s before a gate", args[0], ch.To)
						}
					}
					return nil
				})
				ts.Check(err)
			},
		},
	})
}

// The scripts' secrets must appear in no output: they check it with
// `! stdout` lines; this guards the guard.
func TestScriptsCheckSecrets(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "script", "*.txtar"))
	if len(files) == 0 {
		t.Fatal("no scripts")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "! stdout $ADMIN_SECRET") && !strings.Contains(string(b), "! stderr $ADMIN_SECRET") {
			t.Errorf("%s never checks that the secret stays out of the output", f)
		}
	}
}
