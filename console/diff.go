package console

import "strings"

// DiffLine is one line of a line diff: Op is ' ' (both), '-' (only in the
// old text) or '+' (only in the new one).
type DiffLine struct {
	Op   byte
	Text string
	// Old and New are 1-based line numbers (0 where the line is absent).
	Old, New int
}

// maxDiffLines bounds the inputs Diff compares; beyond it the console says
// the texts are too large to compare.
const maxDiffLines = 20000

// Diff returns the line diff of a and b by Myers' O(ND) algorithm ("An
// O(ND) Difference Algorithm and Its Variations", 1986): a shortest edit
// script, found by extending the furthest-reaching path on each diagonal,
// then read back from the saved frontiers. ok is false when the inputs are
// too large.
func Diff(a, b string) (lines []DiffLine, ok bool) {
	x, y := splitLines(a), splitLines(b)
	n, m := len(x), len(y)
	if n+m > maxDiffLines {
		return nil, false
	}
	maxD := n + m
	off := maxD + 1
	v := make([]int, 2*maxD+3)
	var trace [][]int
	found := false
	for d := 0; d <= maxD && !found; d++ {
		trace = append(trace, append([]int(nil), v...))
		for k := -d; k <= d; k += 2 {
			var i int
			if k == -d || (k != d && v[off+k-1] < v[off+k+1]) {
				i = v[off+k+1] // down: insertion
			} else {
				i = v[off+k-1] + 1 // right: deletion
			}
			j := i - k
			for i < n && j < m && x[i] == y[j] {
				i++
				j++
			}
			v[off+k] = i
			if i >= n && j >= m {
				found = true
				break
			}
		}
	}
	// Walk back through the frontiers.
	i, j := n, m
	var rev []DiffLine
	for d := len(trace) - 1; d >= 0; d-- {
		vd := trace[d]
		k := i - j
		var pk int
		if k == -d || (k != d && vd[off+k-1] < vd[off+k+1]) {
			pk = k + 1
		} else {
			pk = k - 1
		}
		pi := vd[off+pk]
		pj := pi - pk
		for i > pi && j > pj {
			i--
			j--
			rev = append(rev, DiffLine{Op: ' ', Text: x[i], Old: i + 1, New: j + 1})
		}
		if d > 0 {
			if i == pi {
				j--
				rev = append(rev, DiffLine{Op: '+', Text: y[j], New: j + 1})
			} else {
				i--
				rev = append(rev, DiffLine{Op: '-', Text: x[i], Old: i + 1})
			}
		}
	}
	for l, r := 0, len(rev)-1; l < r; l, r = l+1, r-1 {
		rev[l], rev[r] = rev[r], rev[l]
	}
	return rev, true
}

// Hunks keeps the changed lines of a diff with context lines around them;
// a nil DiffLine (Op 0) separates hunks.
func Hunks(lines []DiffLine, context int) []DiffLine {
	keep := make([]bool, len(lines))
	for i, l := range lines {
		if l.Op != ' ' {
			for j := max(0, i-context); j <= min(len(lines)-1, i+context); j++ {
				keep[j] = true
			}
		}
	}
	var out []DiffLine
	gap := false
	for i, l := range lines {
		if !keep[i] {
			gap = true
			continue
		}
		if gap && len(out) > 0 {
			out = append(out, DiffLine{})
		}
		gap = false
		out = append(out, l)
	}
	return out
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}
