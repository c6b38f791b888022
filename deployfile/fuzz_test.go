package deployfile

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse feeds the parser every example file and mutations of them; it
// must never panic and must always point its problems at a position.
func FuzzParse(f *testing.F) {
	for _, root := range exampleRoots(f) {
		addSeeds(f, root)
	}
	f.Add([]byte(head + s1))
	f.Add([]byte("a: &a [*a, *a]\nb: *a\n"))
	f.Add([]byte("targets: {x: {<<: {account: a}, strategy: s}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		res := Parse("f.yml", data)
		for _, p := range res.Errors {
			if p.Message == "" || p.Code == "" {
				t.Fatalf("problem without message or code: %+v", p)
			}
		}
		if res.File != nil && len(res.Errors) == 0 {
			_ = NewPlan(res.File)
		}
	})
}

// addSeeds adds every YAML file under root to the corpus.
func addSeeds(f *testing.F, root string) {
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || (!strings.HasSuffix(p, ".yml") && !strings.HasSuffix(p, ".yaml")) {
			return err
		}
		data, err := os.ReadFile(p)
		if err == nil {
			f.Add(data)
		}
		return err
	})
	if err != nil {
		f.Fatal(err)
	}
}
