package deployfile

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// LoadFS reads, parses and validates the deployment file name of fsys, and
// reads the manifests it names from fsys, relative to the file's folder. The
// server uses it on a deployment as the CLI submitted it (the file and its
// manifests' text, in memory), so it sees exactly what the CLI saw. There is
// no working-directory fallback here: the CLI already resolved paths.
func LoadFS(fsys fs.FS, name string, opts Options) *Result {
	data, err := fs.ReadFile(fsys, name)
	if err != nil {
		return &Result{Errors: Problems{{Pos: Pos{File: name}, Code: CodeSyntax, Message: "cannot read the deployment file: " + rootCause(err).Error()}}}
	}
	r := &report{}
	f := parse(name, data, r, opts)
	if f != nil {
		loadManifestsFS(fsys, f, opts, r)
	}
	res := &Result{File: f}
	res.Errors, res.Warnings = r.finish()
	return res
}

func rootCause(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}

func loadManifestsFS(fsys fs.FS, f *File, opts Options, r *report) {
	dir := path.Dir(f.Path)
	for i, m := range f.Manifests {
		if m == nil || strings.TrimSpace(m.Path) == "" {
			continue
		}
		what := fmt.Sprintf("manifests[%d].path %q", i, m.Path)
		if IsURL(m.Path) {
			loadURLManifest(m, what, opts, r, false)
			continue
		}
		p := path.Clean(path.Join(dir, strings.TrimLeft(m.Path, "/")))
		files, err := manifestFilesFS(fsys, p)
		if err != nil {
			if opts.RequireManifests {
				r.errorf(m.Pos, CodeManifestMissing, "%s was not submitted with the deployment file", what)
			} else {
				r.warnf(m.Pos, CodeManifestMissing, "%s was not submitted with the deployment file", what)
			}
			continue
		}
		if len(files) == 0 {
			r.warnf(m.Pos, CodeManifest, "%s is a directory with no .yaml or .yml files", what)
		}
		for _, name := range files {
			data, err := fs.ReadFile(fsys, name)
			if err != nil {
				r.errorf(m.Pos, CodeManifest, "%s cannot be read: %v", name, rootCause(err))
				continue
			}
			where := func(line, col int) Pos { return Pos{File: name, Line: line, Col: col} }
			m.Files = append(m.Files, &ManifestFile{Path: name, Content: string(data), Objects: parseObjects(data, where, r)})
		}
	}
}

// manifestFilesFS lists a file, or the .yaml/.yml files under a directory
// of fsys (recursively, in lexical order).
func manifestFilesFS(fsys fs.FS, p string) ([]string, error) {
	st, err := fs.Stat(fsys, p)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return []string{p}, nil
	}
	var files []string
	err = fs.WalkDir(fsys, p, func(q string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ext := strings.ToLower(path.Ext(q)); !e.IsDir() && (ext == ".yaml" || ext == ".yml") {
			files = append(files, q)
		}
		return nil
	})
	sort.Strings(files)
	return files, err
}
