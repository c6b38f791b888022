package deployfile

import (
	"fmt"
	"strings"
)

// Suggest returns the candidate closest to s when it is close enough to be
// a likely typo of it, or "".
func Suggest(s string, candidates []string) string { return suggest(s, candidates) }

func suggest(s string, candidates []string) string {
	const maxLen = 64 // no one mistypes a longer name; spare the quadratic work
	if len(s) > maxLen {
		return ""
	}
	best, bestD := "", -1
	ls := strings.ToLower(s)
	for _, c := range candidates {
		if len(c) > maxLen {
			continue
		}
		d := levenshtein(ls, strings.ToLower(c))
		if bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" {
		return ""
	}
	limit := max(1, min(3, len([]rune(best))/3))
	if bestD <= limit {
		return best
	}
	// A name cut short or with a suffix added: "perf-test" for "perf".
	for _, c := range candidates {
		lc := strings.ToLower(c)
		if len(lc) >= 3 && len(ls) >= 3 && (strings.HasPrefix(ls, lc) || strings.HasPrefix(lc, ls)) {
			return c
		}
	}
	return ""
}

// didYouMean is "; did you mean "x"?" or "".
func didYouMean(s string, candidates []string) string {
	if c := suggest(s, candidates); c != "" && c != s {
		return fmt.Sprintf("; did you mean %q?", c)
	}
	return ""
}

// levenshtein is the optimal string alignment distance: insertions,
// deletions, substitutions and swaps of neighbours ("dve" for "dev") cost 1.
func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
