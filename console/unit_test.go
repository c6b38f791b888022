package console

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sortie-cd/sortie/kubetest"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/progress"
	"github.com/sortie-cd/sortie/store"
)

// The browser tests drive a real server against the shared local cluster.
func TestMain(m *testing.M) { kubetest.Main(m) }

func TestMarkdownEscapesEverythingButItsOwnTags(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain", "<p>plain</p>"},
		{"**bold** and *it* and _it_ and `x<y`", "<p><strong>bold</strong> and <em>it</em> and <em>it</em> and <code>x&lt;y</code></p>"},
		{"<script>alert(1)</script>", "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"},
		{`<img src=x onerror="alert(1)">`, "<p>&lt;img src=x onerror=&#34;alert(1)&#34;&gt;</p>"},
		{"[docs](https://example.com/a?b=1&c=2)", `<p><a href="https://example.com/a?b=1&amp;c=2" rel="noopener noreferrer nofollow" target="_blank">docs</a></p>`},
		{"[x](javascript:alert(1))", "<p>[x](javascript:alert(1))</p>"},
		{"[x](data:text/html,hi)", "<p>[x](data:text/html,hi)</p>"},
		{`[x](https://a.example/"onmouseover="alert(1))`, `<p>[x](https://a.example/&#34;onmouseover=&#34;alert(1))</p>`},
		{`[x](https://a.example/"onmouseover="alert)`, `<p><a href="https://a.example/%22onmouseover=%22alert" rel="noopener noreferrer nofollow" target="_blank">x</a></p>`},
		{"[**<b>**](http://e.example)", `<p><a href="http://e.example" rel="noopener noreferrer nofollow" target="_blank"><strong>&lt;b&gt;</strong></a></p>`},
		{"`<a href=x>` **`code`**", "<p><code>&lt;a href=x&gt;</code> **<code>code</code>**</p>"},
		{"line one\nline two\n\nnext <para>", "<p>line one<br>line two</p><p>next &lt;para&gt;</p>"},
		{"snake_case_name stays", "<p>snake_case_name stays</p>"},
		{"", ""},
	} {
		if got := string(Markdown(tc.in)); got != tc.want {
			t.Errorf("Markdown(%q)\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
}

func FuzzMarkdownNeverEmitsForeignTags(f *testing.F) {
	for _, s := range []string{"<script>x</script>", "**a** [l](https://x.example) `c`", "[<i>](javascript:x)", "_<_>_"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := string(Markdown(s))
		// Remove the tags Markdown may write; no '<' may remain.
		for _, tag := range []string{"<p>", "</p>", "<br>", "<strong>", "</strong>", "<em>", "</em>", "<code>", "</code>", "</a>"} {
			out = strings.ReplaceAll(out, tag, "")
		}
		for {
			i := strings.Index(out, `<a href="`)
			if i < 0 {
				break
			}
			j := strings.Index(out[i:], `target="_blank">`)
			if j < 0 {
				t.Fatalf("unterminated link in %q", Markdown(s))
			}
			href := out[i+len(`<a href="`) : i+j]
			if !strings.HasPrefix(href, "http://") && !strings.HasPrefix(href, "https://") {
				t.Fatalf("link to %q from %q", href, s)
			}
			out = out[:i] + out[i+j+len(`target="_blank">`):]
		}
		if strings.ContainsAny(out, "<>") {
			t.Fatalf("Markdown(%q) = %q lets markup through", s, Markdown(s))
		}
	})
}

func TestDiff(t *testing.T) {
	got, ok := Diff("a\nb\nc\nd\n", "a\nc\nd\ne\n")
	if !ok {
		t.Fatal("not compared")
	}
	want := []DiffLine{
		{Op: ' ', Text: "a", Old: 1, New: 1},
		{Op: '-', Text: "b", Old: 2},
		{Op: ' ', Text: "c", Old: 3, New: 2},
		{Op: ' ', Text: "d", Old: 4, New: 3},
		{Op: '+', Text: "e", New: 4},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Diff (-want +got):\n%s", d)
	}
}

// TestDiffRebuildsBothSides checks, on random texts, that the diff is an
// edit script: its kept and deleted lines are the old text, its kept and
// added lines the new one, and nothing shorter exists than a plain LCS says.
func TestDiffRebuildsBothSides(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	words := []string{"a", "b", "c", "d"}
	gen := func() []string {
		n := r.IntN(12)
		out := make([]string, n)
		for i := range out {
			out[i] = words[r.IntN(len(words))]
		}
		return out
	}
	for range 2000 {
		x, y := gen(), gen()
		lines, _ := Diff(strings.Join(x, "\n"), strings.Join(y, "\n"))
		var old, new []string
		edits := 0
		for _, l := range lines {
			if l.Op != '+' {
				old = append(old, l.Text)
			}
			if l.Op != '-' {
				new = append(new, l.Text)
			}
			if l.Op != ' ' {
				edits++
			}
		}
		if !cmp.Equal(old, x, cmp.Comparer(func(a, b []string) bool { return strings.Join(a, "\n") == strings.Join(b, "\n") })) ||
			strings.Join(new, "\n") != strings.Join(y, "\n") {
			t.Fatalf("diff of %q and %q does not rebuild them: %+v", x, y, lines)
		}
		if want := len(x) + len(y) - 2*lcs(x, y); edits != want {
			t.Fatalf("diff of %q and %q has %d edits, shortest is %d", x, y, edits, want)
		}
	}
}

func lcs(a, b []string) int {
	dp := make([][]int, len(a)+1)
	for i := range dp {
		dp[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				dp[i][j] = dp[i+1][j+1] + 1
			} else {
				dp[i][j] = max(dp[i+1][j], dp[i][j+1])
			}
		}
	}
	return dp[0][0]
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"/pipelines/x": "/pipelines/x", "/pipelines?state=RUNNING#top": "/pipelines?state=RUNNING#top",
		"//evil.example": "", "https://evil.example": "", "/\\evil": "", "": "",
		// the reported bypass: a tab (and other characters browsers drop)
		// between the slashes; its decoded form is what reaches safeNext.
		"/\t/evil.example": "", "/\n/evil.example": "", "/\r//evil.example": "", "/%09/evil.example": "/%09/evil.example",
		"/ok\\..\\evil": "", "javascript:alert(1)": "", "/\x00x": "", "/\u0085/evil.example": "",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTimelineShowsRetries(t *testing.T) {
	data, err := json.Marshal(progress.RetryEvent{Target: "prod", Step: "setWeight/0", Attempt: 2, Reason: "503", Message: "retrying setWeight/0: 503 (attempt 2)"})
	if err != nil {
		t.Fatal(err)
	}
	st := &pipeline.State{Targets: []pipeline.TargetState{{Name: "prod"}, {Name: "staging"}}}
	evs := []store.Event{{Type: progress.EventRetry, At: time.Now(), Data: data}}
	var rows []string
	for _, ts := range st.Targets {
		for _, row := range detailOf(st, &session{}, &ts, evs).Timeline {
			rows = append(rows, ts.Name+": "+row.What+": "+string(row.Detail))
		}
	}
	want := []string{"prod: step setWeight/0 retrying: <p>retrying setWeight/0: 503 (attempt 2)</p>"}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Errorf("timeline rows (-want +got):\n%s", diff)
	}
}
