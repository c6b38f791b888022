package deployfile

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// The decoder walks yaml.Node trees into the model by reflection over the
// model's struct tags, so that every unknown key, wrong type and missing key
// is reported with its position, and none stops the walk.

const (
	maxNodes = 200_000 // guards against alias expansion bombs
	maxDepth = 100
)

type decoder struct {
	file  string
	r     *report
	nodes int
	depth int
	over  bool
	// clean tells an afterDecode hook that its struct was read without
	// errors, so that it does not pile conclusions onto a typo.
	clean bool
	// supplied are the paths of required keys given from outside the file
	// (the application of deploy start -n): their absence is no error.
	supplied map[string]bool
}

// nodeDecoder is implemented by model types that read themselves.
type nodeDecoder interface {
	decodeYAML(d *decoder, n, at *yaml.Node, path string)
}

// afterDecoder is implemented by model types that check themselves once
// their fields are read; n is their mapping node.
type afterDecoder interface {
	afterDecode(d *decoder, n *yaml.Node, path string)
}

var (
	nodeDecoderType  = reflect.TypeFor[nodeDecoder]()
	afterDecoderType = reflect.TypeFor[afterDecoder]()
	posType          = reflect.TypeFor[Pos]()
)

func (d *decoder) pos(n *yaml.Node) Pos {
	if n == nil {
		return Pos{File: d.file}
	}
	return Pos{File: d.file, Line: n.Line, Col: n.Column}
}

func (d *decoder) errorf(n *yaml.Node, code, format string, args ...any) {
	d.r.errorf(d.pos(n), code, format, args...)
}

// resolve follows aliases and counts nodes; nil means stop.
func (d *decoder) resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode; i++ {
		if i > maxDepth {
			return nil
		}
		n = n.Alias
	}
	d.nodes++
	if d.nodes > maxNodes {
		if !d.over {
			d.over = true
			d.errorf(n, CodeSyntax, "the file expands to more than %d YAML nodes (aliases?); it is too large to validate", maxNodes)
		}
		return nil
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// describe names what a node is, for "must be X, not Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a map"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "empty"
		case "!!int", "!!float":
			return "the number " + n.Value
		case "!!bool":
			return n.Value
		}
		return strconv.Quote(n.Value)
	}
	return "something else"
}

// pathKey appends a map key to a path, quoting names that need it.
func pathKey(path, key string) string {
	if strings.ContainsAny(key, " .[]\"") || key == "" {
		key = strconv.Quote(key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

type fieldInfo struct {
	index    int
	key      string
	aliases  []string
	required bool
	enum     []string
	doc      string
	// supplied, when not empty, says how a required key may instead be
	// given from outside the file; the schema does not require it.
	supplied string
}

type structInfo struct {
	fields []fieldInfo
	byKey  map[string]int
	keys   []string
	pos    int // index of the Pos field, or -1
}

var structInfos sync.Map // reflect.Type -> *structInfo

func infoOf(t reflect.Type) *structInfo {
	if si, ok := structInfos.Load(t); ok {
		return si.(*structInfo)
	}
	si := &structInfo{byKey: map[string]int{}, pos: -1}
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Name == "Pos" && f.Type == posType {
			si.pos = i
		}
		key := f.Tag.Get("yaml")
		if key == "" || key == "-" {
			continue
		}
		fi := fieldInfo{index: i, key: key, required: f.Tag.Get("required") == "true", doc: f.Tag.Get("doc"), supplied: f.Tag.Get("supplied")}
		if a := f.Tag.Get("alias"); a != "" {
			fi.aliases = strings.Split(a, ",")
		}
		if e := f.Tag.Get("enum"); e != "" {
			fi.enum = strings.Split(e, ",")
		}
		si.byKey[key] = len(si.fields)
		for _, a := range fi.aliases {
			si.byKey[a] = len(si.fields)
		}
		si.keys = append(si.keys, key)
		si.fields = append(si.fields, fi)
	}
	structInfos.Store(t, si)
	return si
}

// pairs returns the key/value pairs of a mapping, with merge keys (<<)
// expanded; keys written in the mapping win over merged ones.
func (d *decoder) pairs(n *yaml.Node) [][2]*yaml.Node {
	var own, merged [][2]*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			src := d.resolve(v)
			if src == nil {
				continue
			}
			var maps []*yaml.Node
			switch src.Kind {
			case yaml.MappingNode:
				maps = append(maps, src)
			case yaml.SequenceNode:
				for _, m := range src.Content {
					if m = d.resolve(m); m != nil && m.Kind == yaml.MappingNode {
						maps = append(maps, m)
					}
				}
			}
			for _, m := range maps {
				if d.depth > maxDepth || d.over {
					break
				}
				d.depth++
				mp := d.pairs(m)
				d.depth--
				// Merged pairs count against the node budget: merges of
				// merges grow exponentially.
				if d.nodes += len(mp); d.nodes > maxNodes {
					d.resolve(m) // reports once
					break
				}
				merged = append(merged, mp...)
			}
			continue
		}
		own = append(own, [2]*yaml.Node{k, v})
	}
	if len(merged) == 0 {
		return own
	}
	seen := map[string]bool{}
	for _, p := range own {
		seen[p[0].Value] = true
	}
	for _, p := range merged {
		if !seen[p[0].Value] {
			seen[p[0].Value] = true
			own = append(own, p)
		}
	}
	return own
}

// decode reads n into v. at is the node to point at for the value as a
// whole (its key when it has one); path names it in messages.
func (d *decoder) decode(v reflect.Value, n, at *yaml.Node, path string) {
	n = d.resolve(n)
	if n == nil {
		return
	}
	if at == nil {
		at = n
	}
	if d.depth > maxDepth {
		d.errorf(n, CodeSyntax, "%s is nested too deeply", path)
		return
	}
	d.depth++
	defer func() { d.depth-- }()

	if v.CanAddr() && v.Addr().Type().Implements(nodeDecoderType) {
		v.Addr().Interface().(nodeDecoder).decodeYAML(d, n, at, path)
		return
	}
	if isNull(n) {
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		nv := reflect.New(v.Type().Elem())
		d.decode(nv.Elem(), n, at, path)
		v.Set(nv)
	case reflect.Struct:
		d.decodeStruct(v, n, at, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(n, CodeWrongType, "%s must be a list, not %s", path, describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), 0, len(n.Content))
		for i, item := range n.Content {
			if v.Type().Elem().Kind() == reflect.Pointer && isNull(d.resolve(item)) {
				d.errorf(item, CodeMissingKey, "%s[%d] is an empty list item", path, i)
				continue
			}
			e := reflect.New(v.Type().Elem()).Elem()
			d.decode(e, item, nil, fmt.Sprintf("%s[%d]", path, i))
			s = reflect.Append(s, e)
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.errorf(n, CodeWrongType, "%s must be a map of names to values, not %s", path, describe(n))
			return
		}
		m := reflect.MakeMap(v.Type())
		for _, p := range d.pairs(n) {
			k, val := p[0], d.resolve(p[1])
			if val == nil {
				return
			}
			if val.Kind != yaml.ScalarNode {
				d.errorf(val, CodeWrongType, "%s must be a single value, not %s", pathKey(path, k.Value), describe(val))
				continue
			}
			m.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), reflect.ValueOf(val.Value).Convert(v.Type().Elem()))
		}
		v.Set(m)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, CodeWrongType, "%s must be a string, not %s", path, describe(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Int, reflect.Int64:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
			d.errorf(n, CodeWrongType, "%s must be a whole number, not %s", path, describe(n))
			return
		}
		i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
		if err != nil || v.OverflowInt(i) {
			d.errorf(n, CodeWrongType, "%s must be a whole number, not %s", path, describe(n))
			return
		}
		v.SetInt(i)
	case reflect.Float64:
		if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") {
			d.errorf(n, CodeWrongType, "%s must be a number, not %s", path, describe(n))
			return
		}
		var f float64
		if err := n.Decode(&f); err != nil || math.IsNaN(f) {
			d.errorf(n, CodeWrongType, "%s must be a number, not %s", path, describe(n))
			return
		}
		v.SetFloat(f)
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			d.errorf(n, CodeWrongType, "%s must be true or false, not %s", path, describe(n))
			return
		}
		v.SetBool(strings.EqualFold(n.Value, "true"))
	default:
		panic("deployfile: no decoder for " + v.Type().String())
	}
}

// decodeStruct reads a mapping into a model struct.
func (d *decoder) decodeStruct(v reflect.Value, n, at *yaml.Node, path string) {
	si := infoOf(v.Type())
	if si.pos >= 0 {
		v.Field(si.pos).Set(reflect.ValueOf(d.pos(at)))
	}
	if isNull(n) {
		n = &yaml.Node{Kind: yaml.MappingNode, Line: n.Line, Column: n.Column}
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, CodeWrongType, "%s must be a map of keys to values, not %s", path, describe(n))
		return
	}
	seen := make([]*yaml.Node, len(si.fields))
	before := len(d.r.errs)
	suggested := map[string]bool{}
	for _, p := range d.pairs(n) {
		k := p[0]
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, CodeWrongType, "a key in %s must be a name, not %s", orTop(path), describe(k))
			continue
		}
		i, ok := si.byKey[k.Value]
		if !ok {
			d.errorf(k, CodeUnknownKey, "unknown key %q in %s%s", k.Value, orTop(path), didYouMean(k.Value, si.keys))
			suggested[suggest(k.Value, si.keys)] = true
			continue
		}
		f := si.fields[i]
		if prev := seen[i]; prev != nil {
			if prev.Value == k.Value {
				d.errorf(k, CodeDuplicate, "%s appears twice in %s (first on line %d)", k.Value, orTop(path), prev.Line)
			} else {
				d.errorf(k, CodeDuplicate, "%s and %s are two spellings of the same key in %s; give only one", prev.Value, k.Value, orTop(path))
			}
			continue
		}
		seen[i] = k
		fv := v.Field(f.index)
		fpath := pathKey(path, k.Value)
		d.decode(fv, p[1], k, fpath)
		if len(f.enum) > 0 && fv.Kind() == reflect.String && fv.String() != "" {
			d.checkEnum(fv, f.enum, p[1], fpath)
		}
	}
	for i, f := range si.fields {
		switch {
		case !f.required || seen[i] != nil || suggested[f.key] || d.supplied[pathKey(path, f.key)]:
		case f.supplied != "":
			d.errorf(at, CodeMissingKey, "%s is missing the required key %q (or give it with %s)", orTop(path), f.key, f.supplied)
		default:
			d.errorf(at, CodeMissingKey, "%s is missing the required key %q", orTop(path), f.key)
		}
	}
	if v.CanAddr() && v.Addr().Type().Implements(afterDecoderType) {
		d.clean = len(d.r.errs) == before
		v.Addr().Interface().(afterDecoder).afterDecode(d, n, path)
	}
}

func orTop(path string) string {
	if path == "" {
		return "the top level"
	}
	return path
}

// checkEnum accepts any case and stores the canonical spelling.
func (d *decoder) checkEnum(v reflect.Value, enum []string, n *yaml.Node, path string) {
	for _, e := range enum {
		if strings.EqualFold(v.String(), e) {
			v.SetString(e)
			return
		}
	}
	d.errorf(d.resolve(n), CodeInvalidValue, "%s must be %s, not %q%s", path, orList(enum), v.String(), didYouMean(v.String(), enum))
}

// orList is "a, b or c".
func orList(xs []string) string {
	if len(xs) == 1 {
		return xs[0]
	}
	return strings.Join(xs[:len(xs)-1], ", ") + " or " + xs[len(xs)-1]
}

// keyNode returns the key node of key in mapping n, or nil.
func keyNode(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i]
		}
	}
	return nil
}

// valueNode returns the value node of key in mapping n, or nil.
func valueNode(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}
