package deployfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// parseInlineManifests parses the inline manifests of f; their objects are
// positioned in the deployment file itself.
func parseInlineManifests(f *File, data []byte, r *report) {
	lines := bytes.Split(data, []byte("\n"))
	for _, m := range f.Manifests {
		if m == nil || strings.TrimSpace(m.Inline) == "" {
			continue
		}
		at := m.inlineAt
		where := func(line, col int) Pos {
			if !at.literal {
				return Pos{File: f.Path, Line: at.line, Col: at.col}
			}
			l := at.line + line // content starts on the line after "inline: |"
			indent := 0
			if l-1 < len(lines) {
				indent = len(lines[l-1]) - len(bytes.TrimLeft(lines[l-1], " "))
			}
			return Pos{File: f.Path, Line: l, Col: indent + col}
		}
		objs := parseObjects([]byte(m.Inline), where, r)
		m.Files = []*ManifestFile{{Path: f.Path, Content: m.Inline, Objects: objs}}
	}
}

// inlinePos is where an inline manifest's text starts in the deployment file.
type inlinePos struct {
	line, col int
	literal   bool // a | block: lines map one to one
}

// loadManifests reads the manifest files that f names by path.
func loadManifests(f *File, opts Options, r *report) {
	dir := filepath.Dir(f.Path)
	wd := opts.WorkDir
	if wd == "" {
		wd, _ = os.Getwd()
	}
	for i, m := range f.Manifests {
		if m == nil || strings.TrimSpace(m.Path) == "" {
			continue
		}
		what := fmt.Sprintf("manifests[%d].path %q", i, m.Path)
		if IsURL(m.Path) {
			loadURLManifest(m, what, opts, r, true)
			continue
		}
		found, rel := "", m.Path
		if filepath.IsAbs(m.Path) {
			if _, err := os.Stat(m.Path); err == nil {
				found = m.Path
			}
			rel = strings.TrimLeft(filepath.ToSlash(m.Path), "/")
		}
		if cand := filepath.Join(dir, rel); found == "" && exists(cand) {
			found = cand
			if rel != m.Path {
				r.warnf(m.Pos, CodeManifestCwd, "%s starts with / but no such absolute path exists; it is read as %q in the deployment file's folder", what, rel)
			}
		}
		if cand := filepath.Join(wd, rel); found == "" && wd != "" && exists(cand) {
			found = cand
			hint := ""
			if absDir, err := filepath.Abs(dir); err == nil {
				if relPath, err := filepath.Rel(absDir, cand); err == nil {
					hint = fmt.Sprintf(", so write it as %q", filepath.ToSlash(relPath))
				}
			}
			r.warnf(m.Pos, CodeManifestCwd, "%s was found relative to the working directory %s, as Armory's CLI resolved it; Sortie resolves paths from the deployment file's folder%s", what, wd, hint)
		}
		if found == "" {
			msg := fmt.Sprintf("%s does not exist (looked in %s and in the working directory %s)", what, dir, wd)
			if absDir, err := filepath.Abs(dir); err == nil && absDir == wd {
				msg = fmt.Sprintf("%s does not exist (looked in %s)", what, wd)
			}
			if opts.RequireManifests {
				r.errorf(m.Pos, CodeManifestMissing, "%s", msg)
			} else {
				r.warnf(m.Pos, CodeManifestMissing, "%s; deploying will fail until it does", msg)
			}
			continue
		}
		files, err := manifestFiles(found)
		if err != nil {
			r.errorf(m.Pos, CodeManifest, "%s cannot be read: %v", what, err)
			continue
		}
		if len(files) == 0 {
			r.warnf(m.Pos, CodeManifest, "%s is a directory with no .yaml or .yml files", what)
		}
		for _, name := range files {
			data, err := os.ReadFile(name)
			if err != nil {
				r.errorf(m.Pos, CodeManifest, "%s cannot be read: %v", name, err)
				continue
			}
			where := func(line, col int) Pos { return Pos{File: name, Line: line, Col: col} }
			m.Files = append(m.Files, &ManifestFile{Path: name, Content: string(data), Objects: parseObjects(data, where, r)})
		}
	}
}

// IsURL reports whether a manifest path is an http(s) URL, which only
// Options.Fetch reads.
func IsURL(p string) bool {
	return strings.HasPrefix(p, "https://") || strings.HasPrefix(p, "http://")
}

// loadURLManifest reads a manifest named by URL through opts.Fetch; its
// objects are positioned in the URL's text (URL:line:col). Without Fetch
// the manifest is unread: a warning offline, an error for what a client
// submitted (it would deploy without it).
func loadURLManifest(m *Manifest, what string, opts Options, r *report, offline bool) {
	switch {
	case opts.Fetch == nil && offline:
		r.warnf(m.Pos, CodeManifestRemote, "%s is a URL; URLs are not read offline, so its objects are not checked here (deploy start fetches it)", what)
		return
	case opts.Fetch == nil:
		r.errorf(m.Pos, CodeManifestRemote, "%s is a URL whose text was not submitted with the deployment file", what)
		return
	}
	text, err := opts.Fetch(m.Path)
	if err != nil {
		r.errorf(m.Pos, CodeManifestRemote, "%s cannot be fetched: %v", what, err)
		return
	}
	where := func(line, col int) Pos { return Pos{File: m.Path, Line: line, Col: col} }
	m.Files = []*ManifestFile{{Path: m.Path, Content: text, Objects: parseObjects([]byte(text), where, r)}}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// manifestFiles lists a file, or the .yaml/.yml files under a directory
// (recursively, in lexical order).
func manifestFiles(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	var files []string
	err = filepath.WalkDir(path, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ext := strings.ToLower(filepath.Ext(p)); !e.IsDir() && (ext == ".yaml" || ext == ".yml") {
			files = append(files, p)
		}
		return nil
	})
	return files, err
}

// parseObjects parses the YAML documents of a manifest as Kubernetes
// objects; where maps a line and column of data to a position.
func parseObjects(data []byte, where func(line, col int) Pos, r *report) []Object {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var objs []Object
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			p := yamlError("", err)
			pos := where(max(p.Line, 1), 1)
			if p.Line == 0 {
				pos = where(1, 1)
			}
			r.errorf(pos, CodeManifest, "manifest is %s", p.Message)
			break
		}
		if len(doc.Content) == 0 || isNull(doc.Content[0]) {
			continue
		}
		n := doc.Content[0]
		pos := where(n.Line, n.Column)
		if n.Kind != yaml.MappingNode {
			r.errorf(pos, CodeManifest, "this manifest document is not a Kubernetes object: it is %s, not a map with apiVersion, kind and metadata", describe(n))
			continue
		}
		obj := Object{Pos: pos}
		var missing []string
		obj.APIVersion = scalarAt(n, "apiVersion")
		obj.Kind = scalarAt(n, "kind")
		meta := valueNode(n, "metadata")
		obj.Name = scalarAt(meta, "name")
		if obj.Name == "" {
			obj.Name = scalarAt(meta, "generateName")
		}
		obj.Namespace = scalarAt(meta, "namespace")
		if obj.APIVersion == "" {
			missing = append(missing, "apiVersion")
		}
		if obj.Kind == "" {
			missing = append(missing, "kind")
		}
		if obj.Name == "" {
			missing = append(missing, "metadata.name")
		}
		if len(missing) > 0 {
			r.errorf(pos, CodeManifest, "this manifest document is not a Kubernetes object: it has no %s", orList(missing))
			continue
		}
		if obj.Kind == "Deployment" {
			replicas := 1
			if rn := valueNode(valueNode(n, "spec"), "replicas"); rn != nil && !isNull(rn) {
				if err := rn.Decode(&replicas); err != nil || rn.Tag != "!!int" || replicas < 0 {
					rp := where(rn.Line, rn.Column)
					r.errorf(rp, CodeManifest, "Deployment %q: spec.replicas must be a whole number of at least 0, not %s", obj.Name, describe(rn))
					continue
				}
			}
			obj.Replicas = &replicas
		}
		objs = append(objs, obj)
	}
	return objs
}

// scalarAt is the scalar value under key in mapping n, or "".
func scalarAt(n *yaml.Node, key string) string {
	v := valueNode(n, key)
	if v == nil || v.Kind != yaml.ScalarNode || isNull(v) {
		return ""
	}
	return v.Value
}
