package deployfile

import (
	"encoding/json"
	"reflect"
	"strings"
)

//go:generate go run ./internal/genschema ../docs/deployfile.schema.json

// SchemaID is the $id of the JSON Schema.
const SchemaID = "https://github.com/sortie-cd/sortie/raw/main/docs/deployfile.schema.json"

// schemaer is implemented by model types whose YAML form is not their
// struct shape.
type schemaer interface {
	jsonSchema(g *schemaGen) map[string]any
}

var schemaerType = reflect.TypeFor[schemaer]()

type schemaGen struct {
	defs map[string]any
}

// Schema returns the JSON Schema (draft-07, which yaml-language-server
// reads) of a deployment file, generated from the model's types.
func Schema() ([]byte, error) {
	g := &schemaGen{defs: map[string]any{}}
	root := g.structSchema(reflect.TypeFor[File]())
	root["$schema"] = "http://json-schema.org/draft-07/schema#"
	root["$id"] = SchemaID
	root["title"] = "Sortie deployment file"
	root["description"] = "Where (targets), what (manifests) and how (strategies) to deploy to Kubernetes; the dialect of Armory CD-as-a-Service files."
	root["definitions"] = g.defs
	b, err := json.MarshalIndent(root, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func (g *schemaGen) schemaOf(t reflect.Type) map[string]any {
	if t.Kind() == reflect.Pointer {
		return g.schemaOf(t.Elem())
	}
	if t.Implements(schemaerType) {
		return reflect.Zero(t).Interface().(schemaer).jsonSchema(g)
	}
	if reflect.PointerTo(t).Implements(schemaerType) {
		return reflect.New(t).Interface().(schemaer).jsonSchema(g)
	}
	switch t.Kind() {
	case reflect.Struct:
		name := t.Name()
		if _, ok := g.defs[name]; !ok {
			g.defs[name] = true // placeholder against recursion
			g.defs[name] = g.structSchema(t)
		}
		return map[string]any{"$ref": "#/definitions/" + name}
	case reflect.Slice:
		return map[string]any{"type": "array", "items": g.schemaOf(t.Elem())}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Int, reflect.Int64:
		return map[string]any{"type": "integer"}
	case reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	}
	panic("deployfile: no schema for " + t.String())
}

func (g *schemaGen) structSchema(t reflect.Type) map[string]any {
	si := infoOf(t)
	props := map[string]any{}
	var required []string
	for _, f := range si.fields {
		sf := t.Field(f.index)
		s := g.schemaOf(sf.Type)
		if _, isRef := s["$ref"]; isRef && f.doc != "" {
			s = map[string]any{"allOf": []any{s}}
		}
		if f.doc != "" {
			s["description"] = f.doc
		}
		if len(f.enum) > 0 {
			s["enum"] = f.enum
		}
		props[f.key] = s
		for _, a := range f.aliases {
			alias := map[string]any{}
			for k, v := range s {
				alias[k] = v
			}
			alias["description"] = "Another spelling of " + f.key + "."
			props[a] = alias
		}
		if f.required && f.supplied == "" {
			required = append(required, f.key)
		}
	}
	out := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		out["required"] = required
	}
	return out
}

func (Targets) jsonSchema(g *schemaGen) map[string]any {
	return map[string]any{"type": "object", "minProperties": 1, "additionalProperties": g.schemaOf(reflect.TypeFor[Target]())}
}

func (Strategies) jsonSchema(g *schemaGen) map[string]any {
	return map[string]any{"type": "object", "additionalProperties": g.schemaOf(reflect.TypeFor[Strategy]())}
}

func (Context) jsonSchema(*schemaGen) map[string]any {
	return map[string]any{"type": "object", "additionalProperties": map[string]any{"type": []string{"string", "number", "boolean"}}}
}

func (Ref) jsonSchema(*schemaGen) map[string]any {
	return map[string]any{"type": "string", "minLength": 1}
}

func (Template) jsonSchema(*schemaGen) map[string]any {
	return map[string]any{"type": "string"}
}

func (TimeUnit) jsonSchema(*schemaGen) map[string]any {
	var alts []string
	for _, u := range unitNames {
		var b strings.Builder
		for _, r := range strings.TrimSuffix(u, "s") {
			b.WriteString("[" + string(r) + strings.ToUpper(string(r)) + "]")
		}
		alts = append(alts, b.String()+"[sS]?")
	}
	return map[string]any{"type": "string", "pattern": "^(" + strings.Join(alts, "|") + ")$", "examples": unitNames}
}

func (SetWeight) jsonSchema(g *schemaGen) map[string]any {
	return map[string]any{"oneOf": []any{
		map[string]any{"type": "integer", "minimum": 0, "maximum": 100},
		map[string]any{
			"type":                 "object",
			"properties":           map[string]any{"weight": map[string]any{"type": "integer", "minimum": 0, "maximum": 100, "description": "Percent for the new version, 0 to 100."}},
			"required":             []string{"weight"},
			"additionalProperties": false,
		},
	}}
}

func (Step) jsonSchema(g *schemaGen) map[string]any {
	if _, ok := g.defs["Step"]; !ok {
		g.defs["Step"] = true
		s := g.structSchema(reflect.TypeFor[Step]())
		s["minProperties"] = 1
		s["maxProperties"] = 1
		g.defs["Step"] = s
	}
	return map[string]any{"$ref": "#/definitions/Step"}
}
