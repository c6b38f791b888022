package rules

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/sortie-cd/sortie/"

// rule is what a package's doc.go promises about what it links.
type rule struct {
	// stdlib: the package imports only the standard library (and the
	// module packages in imports).
	stdlib  bool
	imports []string // with stdlib: the module packages it may import
	// noImports are import-path prefixes the package must not import
	// itself; noDeps ones none of its dependencies may be (or import).
	noImports, noDeps []string
	// allowDeps are exceptions to noDeps (exact import paths).
	allowDeps []string
	// testOnly: only tests (and other test-only packages) may link it.
	testOnly bool
	// notImported: no package may import it (a main or a test holder).
	notImported bool
}

// Prefixes: a trailing "/" means the whole tree under it.
const (
	k8s      = "k8s.io/"
	sigsK8s  = "sigs.k8s.io/"
	kube     = module + "kube"
	kubeexec = module + "kubeexec"
	runner   = module + "runner"
	cobra    = "github.com/spf13/"
	netHTTP  = "net/http"
	console  = module + "console"
	server   = module + "server"
	sqlite   = module + "store/sqlite"
	modernc  = "modernc.org/"
)

var (
	noCluster = []string{k8s, sigsK8s, kube, kubeexec}
	// noTestCode: the product links no test package and no development
	// tooling.
	noTestCode = []string{module + "localkube", module + "kubetest", module + "internal/pgserver", "testing", "net/http/httptest"}
)

// rules has one row per package, by path inside the module. What a row
// checks is what the package's doc.go says it must not do (the parts an
// import can show; the rest have their own tests).
var rules = map[string]rule{
	"agent":                         {noDeps: noCluster},
	"agent/agentpb":                 {noDeps: append([]string{module}, noCluster...)},
	"agent/e2e":                     {notImported: true},
	"analysis":                      {noDeps: append([]string{runner}, noCluster...)},
	"analysis/promtest":             {testOnly: true, noDeps: []string{module}},
	"api":                           {noDeps: append([]string{console, server, sqlite}, noCluster...)},
	"atomicfile":                    {stdlib: true},
	"auth":                          {noDeps: append([]string{runner, module + "api", console}, noCluster...)},
	"auth/sso":                      {noDeps: append([]string{runner, module + "api"}, noCluster...)},
	"auth/sso/ssotest":              {testOnly: true},
	"bench":                         {notImported: true},
	"charts":                        {notImported: true},
	"charts/charttest":              {testOnly: true},
	"cli":                           {noDeps: noTestCode},
	"client":                        {noDeps: append([]string{cobra, runner, console, server}, noCluster...)},
	"client/clienttest":             {testOnly: true},
	"cmd/localkube":                 {notImported: true},
	"cmd/sortie":                    {notImported: true, noDeps: noTestCode},
	"console":                       {noDeps: append([]string{runner, sqlite, module + "gate", "testing", "net/http/httptest"}, noCluster...)},
	"deployfile":                    {noImports: []string{"net", "os/exec", module}, noDeps: []string{k8s, module}},
	"deployfile/internal/genschema": {notImported: true},
	"dora":                          {stdlib: true, imports: []string{module + "pipeline", module + "store"}},
	"egress":                        {stdlib: true},
	"e2e/armory":                    {notImported: true},
	"gate":                          {noDeps: noCluster},
	"internal/pgserver":             {noDeps: []string{module}},
	"internal/proctest":             {testOnly: true},
	"internal/rules":                {notImported: true},
	"kube":                          {noImports: []string{module + "pipeline", runner, module + "store", module + "deployfile"}},
	"kubeexec":                      {noImports: []string{module + "deployfile", netHTTP}},
	"kubetest":                      {testOnly: true},
	"leaktest":                      {testOnly: true, noDeps: []string{module}},
	"localkube":                     {noImports: []string{module}},
	"pipeline":                      {stdlib: true},
	"plan":                          {stdlib: true, imports: []string{module + "deployfile", module + "pipeline", module + "store"}},
	"preview":                       {noDeps: append([]string{runner, module + "agent"}, noCluster...)},
	"progress":                      {stdlib: true},
	"redact":                        {stdlib: true},
	"notify":                        {noDeps: append([]string{runner, module + "api", console, server, sqlite}, noCluster...)},
	"replicas":                      {noDeps: append([]string{sqlite, console, module + "api", "testing"}, noCluster...)},
	"runner":                        {noImports: append([]string{netHTTP, console, module + "api"}, noCluster...), noDeps: noCluster},
	"secrets":                       {noDeps: append([]string{runner}, noCluster...)},
	"server/pge2e":                  {notImported: true},
	"server":                        {noDeps: noTestCode},
	"store":                         {noImports: []string{sqlite, modernc}, noDeps: append([]string{runner}, noCluster...)},
	"store/internal/sqlrow":         {noDeps: append([]string{runner, sqlite, modernc, "github.com/jackc/"}, noCluster...)},
	"store/postgres":                {noDeps: append([]string{runner, sqlite, modernc, "testing"}, noCluster...)},
	"store/postgres/pgtest":         {testOnly: true, noDeps: []string{module}, allowDeps: []string{module + "internal/pgserver"}},
	"store/sqlite":                  {noDeps: append([]string{runner}, noCluster...)},
	"store/storetest":               {testOnly: true, noDeps: []string{sqlite, modernc}},
	"tlstest":                       {testOnly: true, noDeps: []string{module}},
	"tracing":                       {noDeps: append([]string{module}, noCluster...)},
	"webhook":                       {noDeps: append([]string{runner, module + "store"}, noCluster...)},
}

type pkg struct {
	ImportPath string
	Dir        string
	Name       string
	Standard   bool
	Imports    []string
	Deps       []string
}

func matches(path, prefix string) bool {
	if strings.HasSuffix(prefix, "/") {
		return strings.HasPrefix(path, prefix)
	}
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

func list(t *testing.T) []pkg {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-json=ImportPath,Dir,Name,Standard,Imports,Deps", "./...")
	cmd.Dir = root
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var ps []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	if len(ps) < 20 {
		t.Fatalf("go list found %d packages; the module has more", len(ps))
	}
	return ps
}

var mustNot = regexp.MustCompile(`(?i)must not|must never`)

// TestEveryPackageSaysWhatItMustNotDo: a doc.go with a "must not" and a
// row in the rules table, for every package of the module.
func TestEveryPackageSaysWhatItMustNotDo(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range list(t) {
		rel := strings.TrimPrefix(p.ImportPath, module)
		seen[rel] = true
		if _, ok := rules[rel]; !ok {
			t.Errorf("package %s has no row in the rules table (internal/rules/rules_test.go)", rel)
		}
		doc, err := os.ReadFile(filepath.Join(p.Dir, "doc.go"))
		if err != nil {
			t.Errorf("package %s has no doc.go", rel)
			continue
		}
		if !mustNot.Match(comment(doc)) {
			t.Errorf("%s/doc.go does not say what the package must not do", rel)
		}
	}
	for rel := range rules {
		if !seen[rel] {
			t.Errorf("the rules table names %s, which is not a package any more", rel)
		}
	}
}

// comment is the package comment of a doc.go.
func comment(src []byte) []byte {
	var b bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(src))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "package ") {
			break
		}
		b.WriteString(line + "\n")
	}
	return b.Bytes()
}

// TestImportRules checks each package's imports against its row.
func TestImportRules(t *testing.T) {
	ps := list(t)
	std := map[string]bool{}
	stdCmd := exec.Command("go", "list", "std")
	out, err := stdCmd.Output()
	if err != nil {
		t.Fatalf("go list std: %v", err)
	}
	for _, l := range strings.Fields(string(out)) {
		std[l] = true
	}
	for _, p := range ps {
		rel := strings.TrimPrefix(p.ImportPath, module)
		r := rules[rel]
		for _, imp := range p.Imports {
			if r.stdlib && !std[imp] && !slices.Contains(r.imports, imp) {
				t.Errorf("%s imports %s: it promises the standard library only", rel, imp)
			}
			for _, bad := range r.noImports {
				if matches(imp, bad) {
					t.Errorf("%s imports %s, which its doc.go rules out", rel, imp)
				}
			}
		}
		for _, dep := range p.Deps {
			if slices.Contains(r.allowDeps, dep) {
				continue
			}
			for _, bad := range r.noDeps {
				if matches(dep, bad) {
					t.Errorf("%s links %s (through its imports), which its doc.go rules out", rel, dep)
					break
				}
			}
		}
	}
	for _, p := range ps {
		from := rules[strings.TrimPrefix(p.ImportPath, module)]
		for _, dep := range p.Deps {
			if !strings.HasPrefix(dep, module) {
				continue
			}
			to := rules[strings.TrimPrefix(dep, module)]
			switch {
			case to.notImported:
				t.Errorf("%s imports %s, which nothing may import", p.ImportPath, dep)
			case to.testOnly && !from.testOnly:
				t.Errorf("%s links the test-only package %s outside a test", p.ImportPath, dep)
			}
		}
	}
}
