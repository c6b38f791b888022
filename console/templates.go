package console

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/sortie-cd/sortie/pipeline"
)

var funcs = template.FuncMap{
	"statusClass": func(s pipeline.Status) string { return "s-" + strings.ToLower(string(s)) },
	"statusText": func(s pipeline.Status) string {
		if s == "" {
			return "–"
		}
		return strings.ReplaceAll(string(s), "_", " ")
	},
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return "–"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"clock": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("15:04:05Z")
	},
	"join":    strings.Join,
	"seconds": seconds,
	"percent": func(v float64) string { return fmt.Sprintf("%.0f%%", v*100) },
	"perDay": func(v float64) string {
		if v >= 1 || v == 0 {
			return fmt.Sprintf("%.1f a day", v)
		}
		return fmt.Sprintf("%.1f a week", v*7)
	},
	"markdown": Markdown,
	"has": func(list []string, s string) bool {
		for _, x := range list {
			if x == s {
				return true
			}
		}
		return false
	},
	"diffClass": func(op byte) string {
		switch op {
		case '+':
			return "add"
		case '-':
			return "del"
		case 0:
			return "gap"
		}
		return "ctx"
	},
	"diffOp": func(op byte) string {
		if op == 0 {
			return "…"
		}
		return string(op)
	},
	"lineNo": func(n int) string {
		if n == 0 {
			return ""
		}
		return fmt.Sprint(n)
	},
	"add": func(a, b int) int { return a + b },
	// act binds an action to its pipeline and the session's CSRF token.
	"act": func(a Action, pipelineID, csrf string) actionForm {
		return actionForm{A: a, ID: pipelineID, CSRF: csrf}
	},
}

type actionForm struct {
	A        Action
	ID, CSRF string
}

// parsePages parses each page template with the shared layout and
// partials, one template set per page.
func parsePages() (map[string]*template.Template, error) {
	base, err := template.New("layout").Funcs(funcs).ParseFS(templateFS, "templates/_*.html")
	if err != nil {
		return nil, fmt.Errorf("console: templates: %w", err)
	}
	names, err := fs.Glob(templateFS, "templates/[a-z]*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		t, err := template.Must(base.Clone()).ParseFS(templateFS, n)
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", n, err)
		}
		name := strings.TrimSuffix(path.Base(n), ".html")
		pages[name] = t
		// Fragments defined inside a page are rendered by their own name.
		for _, sub := range t.Templates() {
			if sub.Name() != name && !strings.HasPrefix(sub.Name(), "_") && sub.Name() != "layout" && !strings.HasSuffix(sub.Name(), ".html") {
				if _, taken := pages[sub.Name()]; !taken && isFragment(sub.Name()) {
					pages[sub.Name()] = t
				}
			}
		}
	}
	return pages, nil
}

// isFragment names the templates served as partials.
func isFragment(name string) bool {
	return name == "listtable" || name == "pipelinelive"
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
