package deployfile

import (
	"bytes"
	"errors"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Result is what parsing and validating a deployment file found. File is
// nil only when the file is not YAML at all.
type Result struct {
	File     *File
	Errors   Problems
	Warnings Problems
}

// Err is the errors as an error, or nil when the file is valid.
func (r *Result) Err() error { return r.Errors.Err() }

// Options tune Load.
type Options struct {
	// WorkDir is the directory Armory's CLI resolved manifest paths from;
	// a path found only there is used with a warning. Empty means the
	// process's working directory.
	WorkDir string
	// RequireManifests makes a manifest path that exists nowhere an error;
	// otherwise it is a warning, so that a file can be checked before its
	// manifests are rendered.
	RequireManifests bool
	// Context is added to (and overrides) the file's context, its
	// contextOverrides and every step's context before the file is
	// validated, as Armory merged --add-context first: a key given only
	// here counts as defined.
	Context map[string]string
	// Fetch, when not nil, reads a manifest named by an http(s) URL: the
	// CLI's fetcher at deploy start, or the server's lookup of the text the
	// CLI sent. deployfile itself never touches the network; without Fetch a
	// URL manifest is a warning (not read offline).
	Fetch func(url string) (string, error)
	// Application, when not empty, is the application name given on the
	// command line (deploy start -n): it overrides the file's, and the file
	// need not have one.
	Application string
}

// Load reads, parses and validates the deployment file at path, and reads
// and parses the manifest files it names.
func Load(path string, opts Options) *Result {
	data, err := os.ReadFile(path)
	if err != nil {
		return &Result{Errors: Problems{{Pos: Pos{File: path}, Code: CodeSyntax, Message: "cannot read the deployment file: " + errors.Unwrap(err).Error()}}}
	}
	r := &report{}
	f := parse(path, data, r, opts)
	if f != nil {
		loadManifests(f, opts, r)
	}
	res := &Result{File: f}
	res.Errors, res.Warnings = r.finish()
	return res
}

// Parse parses and validates a deployment file given as bytes; name is the
// file name used in positions. It reads no other file: manifests given by
// path are left for Load.
func Parse(name string, data []byte) *Result {
	r := &report{}
	f := parse(name, data, r, Options{})
	res := &Result{File: f}
	res.Errors, res.Warnings = r.finish()
	return res
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlError turns a yaml.v3 syntax error into a problem with a line.
func yamlError(name string, err error) Problem {
	msg := err.Error()
	p := Problem{Pos: Pos{File: name}, Code: CodeSyntax}
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		p.Line, _ = strconv.Atoi(m[1])
		p.Col = 1
		msg = m[2]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	p.Message = "not valid YAML: " + msg
	return p
}

// parseDocument reads the single YAML document of data.
func parseDocument(name string, data []byte, r *report) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			r.errorf(Pos{File: name}, CodeMissingKey, "the file is empty; a deployment file needs version, kind, application, targets, manifests and strategies")
			return nil
		}
		r.errs = append(r.errs, yamlError(name, err))
		return nil
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		r.errorf(Pos{File: name, Line: next.Line, Col: next.Column}, CodeSyntax, "a deployment file holds one YAML document; this is a second one (after ---)")
	} else if !errors.Is(err, io.EOF) {
		r.errs = append(r.errs, yamlError(name, err))
	}
	if len(doc.Content) == 0 {
		return nil
	}
	return doc.Content[0]
}

func parse(name string, data []byte, r *report, opts Options) *File {
	root := parseDocument(name, data, r)
	if root == nil {
		return nil
	}
	d := &decoder{file: name, r: r, supplied: map[string]bool{"application": opts.Application != ""}}
	f := &File{Path: name}
	root = d.resolve(root)
	if root == nil {
		return f
	}
	if root.Kind != yaml.MappingNode {
		d.errorf(root, CodeWrongType, "a deployment file is a map of keys (version, kind, application, targets, ...), not %s", describe(root))
		return f
	}
	d.decodeStruct(reflect.ValueOf(f).Elem(), root, root, "")
	f.Pos = Pos{File: name, Line: 1, Col: 1}
	// Armory's schema defaulted both; files that leave them out ran there.
	if f.Version == "" {
		f.Version = "v1"
	}
	if f.Kind == "" {
		f.Kind = "kubernetes"
	}
	if d.over {
		return f
	}
	if opts.Application != "" {
		f.Application = opts.Application
	}
	applyContextOverrides(f, opts.Context)
	validate(f, r)
	checkTargetFilters(d, root, f)
	parseInlineManifests(f, data, r)
	return f
}
