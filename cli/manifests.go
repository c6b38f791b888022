package cli

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/sortie-cd/sortie/deployfile"
)

// submittedName is the deployment file's name as sent to the server: the
// path as given when it is relative and inside the working directory (so
// the server's positions match the user's), else the base name.
func submittedName(file string) string {
	clean := filepath.Clean(file)
	if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return filepath.Base(clean)
	}
	return filepath.ToSlash(clean)
}

// collectManifests returns the text of every manifest file f names by path,
// keyed as the server's runner.Load looks them up: relative to the
// deployment file's folder, as written in the file (a leading / dropped);
// the files of a directory entry under that path joined with their path
// inside the directory. A file found through the working-directory fallback
// is keyed by the path as written too, so the server finds it where the
// file says. A manifest named by URL is keyed by its URL, with the text
// fetched. Inline manifests travel inside the file.
func collectManifests(f *deployfile.File, wd string) (map[string]string, error) {
	out := map[string]string{}
	dir := filepath.Dir(f.Path)
	for _, m := range f.Manifests {
		if m == nil || strings.TrimSpace(m.Path) == "" {
			continue
		}
		if deployfile.IsURL(m.Path) {
			if len(m.Files) != 1 {
				return nil, fmt.Errorf("manifest %q: not fetched", m.Path)
			}
			out[m.Path] = m.Files[0].Content
			continue
		}
		rel := strings.TrimLeft(filepath.ToSlash(m.Path), "/")
		key := path.Clean(rel)
		found := resolveManifest(m.Path, rel, dir, wd)
		if found == "" {
			return nil, fmt.Errorf("manifest %q: not found (it was a moment ago)", m.Path)
		}
		st, err := os.Stat(found)
		if err != nil {
			return nil, fmt.Errorf("manifest %q: %w", m.Path, err)
		}
		for _, mf := range m.Files {
			k := key
			if st.IsDir() {
				r, err := filepath.Rel(found, mf.Path)
				if err != nil {
					return nil, fmt.Errorf("manifest %q: %w", m.Path, err)
				}
				k = path.Join(key, filepath.ToSlash(r))
			}
			out[k] = mf.Content
		}
	}
	return out, nil
}

// resolveManifest finds a manifest path the way deployfile.Load does: an
// absolute path that exists, else relative to the deployment file's folder,
// else relative to the working directory.
func resolveManifest(p, rel, dir, wd string) string {
	if filepath.IsAbs(p) && exists(p) {
		return p
	}
	if c := filepath.Join(dir, filepath.FromSlash(rel)); exists(c) {
		return c
	}
	if wd != "" {
		if c := filepath.Join(wd, filepath.FromSlash(rel)); exists(c) {
			return c
		}
	}
	return ""
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
