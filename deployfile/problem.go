package deployfile

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Pos is a position in a file: 1-based line and column. A zero Line means
// the position is unknown (or the whole file).
type Pos struct {
	File string `json:"file,omitempty" yaml:"-"`
	Line int    `json:"line,omitempty" yaml:"-"`
	Col  int    `json:"column,omitempty" yaml:"-"`
}

func (p Pos) String() string {
	switch {
	case p.Line == 0:
		return p.File
	case p.Col == 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Problem codes, stable for tools that read `validate -o json`.
const (
	CodeSyntax          = "yaml-syntax"
	CodeUnknownKey      = "unknown-key"
	CodeWrongType       = "wrong-type"
	CodeMissingKey      = "missing-key"
	CodeDuplicate       = "duplicate"
	CodeInvalidValue    = "invalid-value"
	CodeUnknownRef      = "unknown-reference"
	CodeCycle           = "dependency-cycle"
	CodeWeightRange     = "weight-out-of-range"
	CodeWeightOrder     = "weight-decreasing"
	CodePauseConflict   = "pause-conflict"
	CodeSameService     = "same-service"
	CodeManifest        = "invalid-manifest"
	CodeManifestMissing = "manifest-not-found"
	CodeManifestRemote  = "manifest-remote"
	CodeManifestCwd     = "manifest-relative-to-cwd"
	CodeTemplate        = "template"
	CodeUnused          = "unused"
)

// Problem is one error or warning about a deployment file.
type Problem struct {
	Pos
	Message string `json:"message"`
	Code    string `json:"code"`
}

func (p Problem) String() string {
	if p.File == "" && p.Line == 0 {
		return p.Message
	}
	return p.Pos.String() + ": " + p.Message
}

// Problems is a list of problems sorted by file, line and column. A non-empty
// Problems is an error whose text has one problem per line.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Err returns ps as an error, or nil when there is none.
func (ps Problems) Err() error {
	if len(ps) == 0 {
		return nil
	}
	return ps
}

func (ps Problems) sort() {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		return cmp.Or(
			cmp.Compare(a.File, b.File),
			cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Col, b.Col),
			cmp.Compare(a.Message, b.Message),
		)
	})
}

// dedupe drops repeated identical problems from a sorted list (one wrong
// template in a webhook called from three places is one problem).
func (ps Problems) dedupe() Problems {
	return slices.Compact(ps)
}

// report collects errors and warnings.
type report struct {
	errs  Problems
	warns Problems
}

func (r *report) errorf(pos Pos, code, format string, args ...any) {
	r.errs = append(r.errs, Problem{Pos: pos, Code: code, Message: fmt.Sprintf(format, args...)})
}

func (r *report) warnf(pos Pos, code, format string, args ...any) {
	r.warns = append(r.warns, Problem{Pos: pos, Code: code, Message: fmt.Sprintf(format, args...)})
}

func (r *report) finish() (errs, warns Problems) {
	r.errs.sort()
	r.warns.sort()
	return r.errs.dedupe(), r.warns.dedupe()
}
