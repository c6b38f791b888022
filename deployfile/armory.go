package deployfile

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// What Armory's CLI added to a file when it sent it, and a file may carry
// itself: contextOverrides (from --add-context) and targetFilters (from -t).

// applyContextOverrides gives the file's contextOverrides, and over them
// cli (deploy start --add-context), precedence over context and over every
// step's context, as in Armory's request: an override wins wherever the
// key is set, and a key set nowhere else is added to context.
func applyContextOverrides(f *File, cli Context) {
	over := merge(f.ContextOverrides, cli)
	if len(over) == 0 {
		return
	}
	f.Context = merge(f.Context, over)
	override := func(c Context) {
		for k := range c {
			if v, ok := over[k]; ok {
				c[k] = v
			}
		}
	}
	forEachStepList(f, func(_ string, _ listKind, steps []*Step) {
		for _, s := range steps {
			switch {
			case s == nil:
			case s.RunWebhook != nil:
				override(s.RunWebhook.Context)
			case s.Analysis != nil:
				override(s.Analysis.Context)
			}
		}
	})
}

// checkTargetFilters checks targetFilters as Armory's schema did: at least
// one, each naming a target of the file.
func checkTargetFilters(d *decoder, root *yaml.Node, f *File) {
	if len(f.TargetFilters) == 0 {
		if v := d.resolve(valueNode(root, "targetFilters")); v != nil && v.Kind == yaml.SequenceNode && len(v.Content) == 0 {
			d.errorf(keyNode(root, "targetFilters"), CodeInvalidValue, "targetFilters is empty; name at least one target ([{includeTarget: NAME}]) or leave targetFilters out to run every target")
		}
		return
	}
	known := names(f.Targets, func(t *Target) string { return t.Name })
	for i, tf := range f.TargetFilters {
		if tf == nil || tf.IncludeTarget.Name == "" || f.Targets.Get(tf.IncludeTarget.Name) != nil {
			continue
		}
		d.r.errorf(tf.IncludeTarget.Pos, CodeUnknownRef, "targetFilters[%d].includeTarget %q is not defined%s", i, tf.IncludeTarget.Name, orKnown(tf.IncludeTarget.Name, known))
	}
}

// orKnown is a did-you-mean for name, or the list of known names.
func orKnown(name string, known []string) string {
	if s := didYouMean(name, known); s != "" {
		return s
	}
	return fmt.Sprintf(" (targets defined: %s)", quotedList(known))
}

// IncludedTargets are the targets targetFilters names, in its order, or
// nil when the file has none (every target runs).
func (f *File) IncludedTargets() []string {
	var out []string
	seen := map[string]bool{}
	for _, tf := range f.TargetFilters {
		if tf != nil && !seen[tf.IncludeTarget.Name] {
			seen[tf.IncludeTarget.Name] = true
			out = append(out, tf.IncludeTarget.Name)
		}
	}
	return out
}
