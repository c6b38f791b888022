package console

import (
	"html"
	"html/template"
	"net/url"
	"regexp"
	"strings"
)

// Markdown renders the small subset of Markdown a webhook's mdMessage may
// use: **bold**, *italic* or _italic_, `code`, [links](https://…) with an
// http or https address only, and line breaks. Everything else is text:
// the input is escaped first, and only the tags written here are added, so
// no markup of the message itself ever reaches the page.
func Markdown(src string) template.HTML {
	src = strings.ReplaceAll(src, "\r\n", "\n")
	var b strings.Builder
	for i, para := range splitParagraphs(src) {
		if i > 0 {
			b.WriteString("</p><p>")
		}
		for j, line := range strings.Split(para, "\n") {
			if j > 0 {
				b.WriteString("<br>")
			}
			inline(&b, line)
		}
	}
	if b.Len() == 0 {
		return ""
	}
	return template.HTML("<p>" + b.String() + "</p>")
}

func splitParagraphs(s string) []string {
	var out []string
	for _, p := range regexp.MustCompile(`\n[ \t]*\n`).Split(strings.TrimSpace(s), -1) {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

var (
	linkRe    = regexp.MustCompile(`\[([^\[\]\n]+)\]\(([^()\s]+)\)`)
	strongRe  = regexp.MustCompile(`\*\*([^*\n]+)\*\*`)
	emStarRe  = regexp.MustCompile(`\*([^*\n]+)\*`)
	emUnderRe = regexp.MustCompile(`(^|[^\w])_([^_\n]+)_([^\w]|$)`)
)

// inline renders one line: code spans first (their content stays literal),
// then links, then emphasis on the already escaped text.
func inline(b *strings.Builder, line string) {
	for line != "" {
		start := strings.IndexByte(line, '`')
		if start < 0 {
			links(b, line)
			return
		}
		end := strings.IndexByte(line[start+1:], '`')
		if end < 0 {
			links(b, line)
			return
		}
		links(b, line[:start])
		b.WriteString("<code>" + html.EscapeString(line[start+1:start+1+end]) + "</code>")
		line = line[start+2+end:]
	}
}

func links(b *strings.Builder, s string) {
	for {
		m := linkRe.FindStringSubmatchIndex(s)
		if m == nil {
			b.WriteString(emphasis(html.EscapeString(s)))
			return
		}
		b.WriteString(emphasis(html.EscapeString(s[:m[0]])))
		text, href := s[m[2]:m[3]], s[m[4]:m[5]]
		if u, err := url.Parse(href); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
			b.WriteString(`<a href="` + html.EscapeString(u.String()) + `" rel="noopener noreferrer nofollow" target="_blank">` + emphasis(html.EscapeString(text)) + "</a>")
		} else {
			// Not a web address (javascript:, data:, relative): the text as
			// it was written.
			b.WriteString(emphasis(html.EscapeString(s[m[0]:m[1]])))
		}
		s = s[m[1]:]
	}
}

// emphasis adds strong and em to escaped text; escaping leaves * and _
// alone, and the captured text holds no markup but these tags.
func emphasis(escaped string) string {
	escaped = strongRe.ReplaceAllString(escaped, "<strong>$1</strong>")
	escaped = emStarRe.ReplaceAllString(escaped, "<em>$1</em>")
	return emUnderRe.ReplaceAllString(escaped, "$1<em>$2</em>$3")
}
