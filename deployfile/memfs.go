package deployfile

import (
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"
)

// Files is a read-only file system in memory: file paths (slash-separated,
// clean, relative) to their text. Directories are the paths' prefixes. It
// is how the server hands LoadFS a deployment as the CLI submitted it.
type Files map[string]string

var (
	_ fs.ReadFileFS = Files(nil)
	_ fs.ReadDirFS  = Files(nil)
	_ fs.StatFS     = Files(nil)
)

// Open implements fs.FS.
func (m Files) Open(name string) (fs.File, error) {
	st, err := m.Stat(name)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	if st.IsDir() {
		entries, err := m.ReadDir(name)
		if err != nil {
			return nil, err
		}
		return &memDir{info: st.(memInfo), entries: entries}, nil
	}
	return &memFile{info: st.(memInfo), r: strings.NewReader(m[name])}, nil
}

// ReadFile implements fs.ReadFileFS.
func (m Files) ReadFile(name string) ([]byte, error) {
	text, ok := m[name]
	if !ok || !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "read", Path: name, Err: fs.ErrNotExist}
	}
	return []byte(text), nil
}

// Stat implements fs.StatFS.
func (m Files) Stat(name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
	}
	if text, ok := m[name]; ok {
		return memInfo{name: path.Base(name), size: int64(len(text))}, nil
	}
	if name == "." {
		return memInfo{name: ".", dir: true}, nil
	}
	prefix := name + "/"
	for p := range m {
		if strings.HasPrefix(p, prefix) {
			return memInfo{name: path.Base(name), dir: true}, nil
		}
	}
	return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
}

// ReadDir implements fs.ReadDirFS, entries sorted by name.
func (m Files) ReadDir(name string) ([]fs.DirEntry, error) {
	st, err := m.Stat(name)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrInvalid}
	}
	prefix := name + "/"
	if name == "." {
		prefix = ""
	}
	seen := map[string]memInfo{}
	for p, text := range m {
		rest, ok := strings.CutPrefix(p, prefix)
		if !ok {
			continue
		}
		if first, _, isDir := strings.Cut(rest, "/"); isDir {
			seen[first] = memInfo{name: first, dir: true}
		} else {
			seen[first] = memInfo{name: first, size: int64(len(text))}
		}
	}
	out := make([]fs.DirEntry, 0, len(seen))
	for _, i := range seen {
		out = append(out, fs.FileInfoToDirEntry(i))
	}
	slices.SortFunc(out, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return out, nil
}

type memInfo struct {
	name string
	size int64
	dir  bool
}

func (i memInfo) Name() string       { return i.name }
func (i memInfo) Size() int64        { return i.size }
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return i.dir }
func (i memInfo) Sys() any           { return nil }
func (i memInfo) Mode() fs.FileMode {
	if i.dir {
		return fs.ModeDir | 0o555
	}
	return 0o444
}

type memFile struct {
	info memInfo
	r    io.Reader
}

func (f *memFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *memFile) Read(b []byte) (int, error) { return f.r.Read(b) }
func (f *memFile) Close() error               { return nil }

type memDir struct {
	info    memInfo
	entries []fs.DirEntry
}

func (d *memDir) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *memDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.info.name, Err: fs.ErrInvalid}
}
func (d *memDir) Close() error { return nil }

// ReadDir implements fs.ReadDirFile.
func (d *memDir) ReadDir(n int) ([]fs.DirEntry, error) {
	if n <= 0 {
		out := d.entries
		d.entries = nil
		return out, nil
	}
	if len(d.entries) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(d.entries))
	out := d.entries[:n]
	d.entries = d.entries[n:]
	return out, nil
}
