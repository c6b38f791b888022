package redact

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"sort"
	"strings"
)

// Text replaces a masked value.
const Text = "******"

// Set holds secret values and their encoded forms. The zero value masks
// nothing.
type Set struct {
	forms []string // longest first, so a longer form is masked whole
}

// Add records v and every form it may be echoed in. Empty values are
// ignored.
func (s *Set) Add(v string) {
	if v == "" {
		return
	}
	seen := map[string]bool{}
	for _, f := range s.forms {
		seen[f] = true
	}
	for _, f := range Forms(v) {
		if f != "" && !seen[f] {
			seen[f] = true
			s.forms = append(s.forms, f)
		}
	}
	sort.SliceStable(s.forms, func(i, j int) bool { return len(s.forms[i]) > len(s.forms[j]) })
}

// Empty says whether no value was added.
func (s *Set) Empty() bool { return s == nil || len(s.forms) == 0 }

// Mask replaces every form of every value in text.
func (s *Set) Mask(text string) string {
	if s == nil {
		return text
	}
	for _, f := range s.forms {
		text = strings.ReplaceAll(text, f, Text)
	}
	return text
}

// Forms is v and the forms an echo of it may take: JSON-escaped (with and
// without HTML escaping), URL query- and path-escaped (upper- and
// lower-case hex), and base64 in both alphabets, padded and unpadded.
func Forms(v string) []string {
	out := []string{v}
	if b, err := json.Marshal(v); err == nil {
		out = append(out, string(b[1:len(b)-1]))
	}
	var sb strings.Builder
	enc := json.NewEncoder(&sb)
	enc.SetEscapeHTML(false)
	if enc.Encode(v) == nil {
		j := strings.TrimSuffix(sb.String(), "\n")
		out = append(out, j[1:len(j)-1])
	}
	for _, e := range []string{url.QueryEscape(v), url.PathEscape(v)} {
		out = append(out, e, lowerHex(e))
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		out = append(out, enc.EncodeToString([]byte(v)))
	}
	return out
}

// lowerHex lower-cases the hex digits of every %XX escape in s.
func lowerHex(s string) string {
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			b[i+1] = lower(b[i+1])
			b[i+2] = lower(b[i+2])
			i += 2
		}
	}
	return string(b)
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'F' {
		return c + 'a' - 'A'
	}
	return c
}
