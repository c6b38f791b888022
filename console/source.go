package console

import (
	"net/http"
	"slices"

	"github.com/sortie-cd/sortie/store"
)

// SourceFile is one file of a pipeline's source with its diff against the
// previous pipeline of the same application.
type SourceFile struct {
	Path string
	Text string
	// Diff holds the changed lines with context; Changed is false when the
	// file is the same as before, TooLarge when it was not compared.
	Diff     []DiffLine
	Changed  bool
	Added    bool
	Removed  bool
	TooLarge bool
}

type sourceData struct {
	Page
	P        *store.Pipeline
	Previous *store.Pipeline
	Files    []SourceFile
	Context  map[string]string
}

// sourcePage shows the stored deployment file and manifests of a pipeline,
// each with a line diff against the pipeline of the same application
// created just before it.
func (c *Console) sourcePage(w http.ResponseWriter, r *http.Request, s *session) {
	ctx := r.Context()
	sp, err := c.d.Get(ctx, s.Tenant, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	d := sourceData{Page: c.page(r, s, "Source · "+sp.ID), P: sp, Context: sp.Source.Context}
	older, err := c.d.List(ctx, s.Tenant, store.Filter{Application: sp.Application, CreatedBefore: sp.CreatedAt, Limit: 1})
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	var prev store.Source
	if len(older) > 0 {
		if d.Previous, err = c.d.Get(ctx, s.Tenant, older[0].ID); err != nil {
			c.fail(w, r, s, err)
			return
		}
		prev = d.Previous.Source
	}
	name := sp.Source.FileName
	if name == "" {
		name = "deployment file"
	}
	d.Files = append(d.Files, sourceFile(name, sp.Source.File, prev.File, d.Previous != nil, true, true))
	var paths []string
	for p := range sp.Source.Manifests {
		paths = append(paths, p)
	}
	for p := range prev.Manifests {
		if _, ok := sp.Source.Manifests[p]; !ok {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)
	for _, p := range paths {
		now, inNow := sp.Source.Manifests[p]
		old, inOld := prev.Manifests[p]
		d.Files = append(d.Files, sourceFile(p, now, old, d.Previous != nil, inNow, inOld))
	}
	d.Flash = takeFlash(w, r)
	c.render(w, r, http.StatusOK, "source", d)
}

func sourceFile(path, now, old string, compare, inNow, inOld bool) SourceFile {
	f := SourceFile{Path: path, Text: now}
	if !compare {
		return f
	}
	f.Added, f.Removed = !inOld, !inNow
	lines, ok := Diff(old, now)
	if !ok {
		f.TooLarge = true
		return f
	}
	for _, l := range lines {
		if l.Op != ' ' {
			f.Changed = true
			break
		}
	}
	if f.Changed {
		f.Diff = Hunks(lines, 3)
	}
	return f
}
