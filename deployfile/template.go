package deployfile

import (
	"fmt"
	"slices"
	"strings"
)

// ArmoryVariables are the names Armory CD-as-a-Service provided as
// {{armory.NAME}}; Sortie offers each also as {{sortie.NAME}}. A name under
// preview. ({{armory.preview.SERVICE}}) is the URL of a Service an
// exposeServices step exposed.
var ArmoryVariables = []string{
	"accountName",
	"applicationName",
	"callbackUri",
	"deploymentId",
	"endTimeEpochMillis",
	"endTimeEpochSeconds",
	"endTimeIso8601",
	"environmentName",
	"intervalMillis",
	"intervalSeconds",
	"namespace",
	"promQlStepInterval",
	"replicaSetName",
	"startTimeEpochMillis",
	"startTimeEpochSeconds",
	"startTimeIso8601",
}

// Namespaces of template variables.
const (
	NSArmory  = "armory"
	NSSortie  = "sortie"
	NSContext = "context"
	NSSecrets = "secrets"
)

// Var is one {{namespace.name}} tag of a template.
type Var struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Offset is the byte offset of "{{" in the template text.
	Offset int `json:"offset"`
}

func (v Var) String() string { return "{{" + v.Namespace + "." + v.Name + "}}" }

// TemplateError is a problem with one tag of a template.
type TemplateError struct {
	Offset  int
	Message string
}

func (e *TemplateError) Error() string { return e.Message }

// ParseTemplate finds the variable tags of s. Only variable tags exist:
// {{ namespace.name }}, with optional spaces inside the braces.
func ParseTemplate(s string) ([]Var, []*TemplateError) {
	var vars []Var
	var errs []*TemplateError
	for off := 0; ; {
		i := strings.Index(s[off:], "{{")
		if i < 0 {
			break
		}
		start := off + i
		j := strings.Index(s[start+2:], "}}")
		if j < 0 {
			errs = append(errs, &TemplateError{start, "\"{{\" is never closed by \"}}\""})
			break
		}
		inner := strings.TrimSpace(s[start+2 : start+2+j])
		off = start + 2 + j + 2
		ns, name, ok := strings.Cut(inner, ".")
		if !ok || !validName(ns) || !validPath(name) {
			errs = append(errs, &TemplateError{start, fmt.Sprintf("{{%s}} is not a variable; write {{armory.NAME}}, {{context.NAME}} or {{secrets.NAME}}", inner)})
			continue
		}
		switch ns {
		case NSArmory, NSSortie:
			if !isArmoryVariable(name) {
				errs = append(errs, &TemplateError{start, fmt.Sprintf("{{%s.%s}} is not a variable Sortie provides%s", ns, name, didYouMean(name, ArmoryVariables))})
				continue
			}
		case NSContext, NSSecrets:
		default:
			errs = append(errs, &TemplateError{start, fmt.Sprintf("{{%s}}: %q is not a variable namespace; use armory, sortie, context or secrets%s", inner, ns, didYouMean(ns, []string{NSArmory, NSSortie, NSContext, NSSecrets}))})
			continue
		}
		vars = append(vars, Var{Namespace: ns, Name: name, Offset: start})
	}
	return vars, errs
}

func isArmoryVariable(name string) bool {
	if svc, ok := strings.CutPrefix(name, "preview."); ok {
		return svc != ""
	}
	return slices.Contains(ArmoryVariables, name)
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func validPath(s string) bool {
	for part := range strings.SplitSeq(s, ".") {
		if !validName(part) {
			return false
		}
	}
	return true
}

// Variables are the values a template is rendered with.
type Variables struct {
	// Armory holds the armory.* (and sortie.*) values by bare name.
	Armory map[string]string
	// Context holds the context.* values.
	Context map[string]string
	// Secret returns the value of a secret. When nil, {{secrets.NAME}} tags
	// are left as they are for the server to resolve.
	Secret func(name string) (string, bool)
}

// Render replaces the variable tags of s. It fails, naming the variable, on
// an unknown armory.*/sortie.* name, a context key that has no value, or a
// secret the resolver does not know.
func Render(s string, vars Variables) (string, error) {
	tags, errs := ParseTemplate(s)
	if len(errs) > 0 {
		return "", errs[0]
	}
	var b strings.Builder
	last := 0
	for _, t := range tags {
		end := t.Offset + strings.Index(s[t.Offset:], "}}") + 2
		b.WriteString(s[last:t.Offset])
		last = end
		switch t.Namespace {
		case NSArmory, NSSortie:
			v, ok := vars.Armory[t.Name]
			if !ok {
				return "", fmt.Errorf("%s has no value here", t)
			}
			b.WriteString(v)
		case NSContext:
			v, ok := vars.Context[t.Name]
			if !ok {
				return "", fmt.Errorf("%s is not defined: no context key %q", t, t.Name)
			}
			b.WriteString(v)
		case NSSecrets:
			if vars.Secret == nil {
				b.WriteString(s[t.Offset:end])
				continue
			}
			v, ok := vars.Secret(t.Name)
			if !ok {
				return "", fmt.Errorf("%s: no secret %q", t, t.Name)
			}
			b.WriteString(v)
		}
	}
	b.WriteString(s[last:])
	return b.String(), nil
}
