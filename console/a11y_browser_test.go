package console_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/sortie-cd/sortie/kubetest"
)

// The console on a phone-sized screen, by keyboard only, and without a
// single resource from another origin (issue 9), in real Chromium.

// deployTwoTargets starts a pipeline of app with a canary on staging that
// waits for an approval, then prod (all at once, in its own namespace) after
// staging.
func (s *sortie) deployTwoTargets(app, image, prodNS string) string {
	s.t.Helper()
	return s.deployFile(app, image, fmt.Sprintf(`  staging:
    account: local
    namespace: %s
    strategy: c
  prod:
    account: local
    namespace: %s
    strategy: p
    constraints:
      dependsOn: [staging]
strategies:
  c:
    canary:
      steps:
        - setWeight: 50
        - pause: {untilApproved: true}
        - setWeight: 100
  p:
    canary:
      steps:
        - setWeight: 100`, s.ns, prodNS), "")
}

// awaitingApproval deploys app twice (the first deployment goes straight
// to its version) and returns the second pipeline, waiting at staging's
// approval gate.
func awaitingApproval(t *testing.T, s *sortie, app string) string {
	t.Helper()
	prodNS := kubetest.Namespace(t)
	s.waitAPI(s.deployTwoTargets(app, app+":v1", prodNS), "SUCCEEDED")
	id := s.deployTwoTargets(app, app+":v2", prodNS)
	s.waitAPI(id, "AWAITING_APPROVAL")
	return id
}

// phoneLayoutJS lists what does not fit a phone: a page wider than the
// viewport, a table or the graph wider than the viewport outside a
// container that scrolls on its own, a button too small to tap.
const phoneLayoutJS = `(function () {
  var p = [], de = document.documentElement, vw = de.clientWidth;
  function shown(e) { return e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden'; }
  function name(e) { return e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.getAttribute('class') ? '.' + e.getAttribute('class').trim().split(/\s+/).join('.') : ''); }
  if (de.scrollWidth > vw + 1) {
    // Name the innermost elements that stick out.
    var out = Array.prototype.filter.call(document.body.querySelectorAll('*'), function (e) {
      return shown(e) && e.getBoundingClientRect().right > vw + 1 && !Array.prototype.some.call(e.children, function (c) { return c.getBoundingClientRect().right > vw + 1; });
    }).slice(0, 5).map(function (e) { return name(e) + ' ends at ' + Math.round(e.getBoundingClientRect().right) + 'px'; });
    p.push('the page is ' + de.scrollWidth + 'px wide in a ' + vw + 'px viewport: ' + out.join(', '));
  }
  document.querySelectorAll('table, main svg').forEach(function (t) {
    if (!shown(t)) return;
    var r = t.getBoundingClientRect();
    if (r.left >= -1 && r.right <= vw + 1) return;
    for (var a = t.parentElement; a && a !== document.body; a = a.parentElement) {
      var o = getComputedStyle(a).overflowX;
      if ((o === 'auto' || o === 'scroll') && a.getBoundingClientRect().right <= vw + 1) return;
    }
    p.push(name(t) + ' is ' + Math.round(r.width) + 'px wide and not inside a container that scrolls');
  });
  document.querySelectorAll('button, .btn, input[type=submit], input[type=button]').forEach(function (b) {
    if (!shown(b)) return;
    var h = b.getBoundingClientRect().height;
    if (h < 40) p.push('button "' + (b.textContent || b.value).trim() + '" is ' + Math.round(h) + 'px tall (under 40px to tap)');
  });
  return p;
})()`

// unlabelledJS lists form controls without an accessible name (a label,
// aria-label or aria-labelledby) and buttons and links without text.
const unlabelledJS = `(function () {
  var p = [];
  function desc(e) { return e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.name ? '[name=' + e.name + ']' : ''); }
  document.querySelectorAll('input, select, textarea').forEach(function (e) {
    if (e.type === 'hidden') return;
    var al = e.getAttribute('aria-label');
    if (al && al.trim()) return;
    var lb = e.getAttribute('aria-labelledby');
    if (lb && lb.split(/\s+/).every(function (id) { var l = document.getElementById(id); return l && l.textContent.trim(); })) return;
    if (e.labels && Array.prototype.some.call(e.labels, function (l) { return l.textContent.trim(); })) return;
    p.push(desc(e) + ' has no label');
  });
  document.querySelectorAll('button, a[href]').forEach(function (e) {
    if ((e.textContent || '').trim() || (e.getAttribute('aria-label') || '').trim()) return;
    p.push(desc(e) + ' has no text');
  });
  return p;
})()`

// foreignJS lists every resource the page loaded or refers to (link,
// script, img, iframe, source, object, embed) from another origin.
const foreignJS = `(function () {
  var urls = performance.getEntriesByType('resource').map(function (e) { return e.name; });
  document.querySelectorAll('link[href], script[src], img[src], iframe[src], source[src], video[src], audio[src], object[data], embed[src]').forEach(function (e) {
    urls.push(e.getAttribute('href') || e.getAttribute('src') || e.getAttribute('data'));
  });
  return urls.filter(function (u) {
    try { return new URL(u, location.href).origin !== location.origin; } catch (e) { return true; }
  });
})()`

// cspJS reads the page's Content-Security-Policy header (a same-origin
// fetch of the page itself).
const cspJS = `fetch(location.href, {credentials: 'same-origin'}).then(function (r) { return r.headers.get('content-security-policy') || ''; })`

// checkCSP fails unless every fetch directive of the policy allows only
// the console's own origin ('self'), nothing ('none') or data: images.
func checkCSP(t *testing.T, page, csp string) {
	t.Helper()
	if csp == "" {
		t.Errorf("%s: no Content-Security-Policy header", page)
		return
	}
	directives := map[string][]string{}
	for _, d := range strings.Split(csp, ";") {
		f := strings.Fields(d)
		if len(f) > 0 {
			directives[f[0]] = f[1:]
		}
	}
	if src := directives["default-src"]; len(src) != 1 || src[0] != "'self'" {
		t.Errorf("%s: default-src is %v, want only 'self' (policy %q)", page, src, csp)
	}
	for name, srcs := range directives {
		for _, src := range srcs {
			ok := src == "'self'" || src == "'none'" || (name == "img-src" && src == "data:")
			if !ok {
				t.Errorf("%s: %s allows %s (policy %q)", page, name, src, csp)
			}
		}
	}
}

// checkPage runs the phone-layout, label, resource and policy checks on
// the page the browser shows.
func checkPage(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	if p, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](phoneLayoutJS)); err != nil || len(p) > 0 {
		t.Errorf("%s on a phone: %v %v", page, p, err)
	}
	if p, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](unlabelledJS)); err != nil || len(p) > 0 {
		t.Errorf("%s: %v %v", page, p, err)
	}
	if p, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](foreignJS)); err != nil || len(p) > 0 {
		t.Errorf("%s loads or refers to resources of other origins: %v %v", page, p, err)
	}
	csp, err := chromedp.Run(ctx, chromedp.Evaluate[string](cspJS, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Errorf("%s: read the policy: %v", page, err)
	}
	checkCSP(t, page, csp)
}

// phone makes the page a 390×844 portrait phone with touch.
func phone(t *testing.T, ctx context.Context) {
	t.Helper()
	do(t, ctx, "phone-sized viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait))
}

// tapLoad taps the centre of the element sel with a finger (a touch
// start and end, not a mouse click) and waits for the page it leads to.
// It fails unless the touch landed on the element and made its click.
func tapLoad(t *testing.T, ctx context.Context, what, sel string) {
	t.Helper()
	xy, err := chromedp.Run(ctx, chromedp.Evaluate[[]float64](`(function () {
  var e = document.querySelector(`+fmt.Sprintf("%q", sel)+`);
  e.scrollIntoView({block: 'center'});
  sessionStorage.setItem('taps', '');
  ['touchstart', 'click'].forEach(function (n) {
    document.addEventListener(n, function (ev) { if (ev.target === e) sessionStorage.setItem('taps', sessionStorage.getItem('taps') + n + ' '); }, true);
  });
  var r = e.getBoundingClientRect();
  return [r.left + r.width / 2, r.top + r.height / 2];
})()`))
	if err != nil || len(xy) != 2 {
		t.Fatalf("%s: find %s: %v", what, sel, err)
	}
	tap := chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		start := input.DispatchTouchEventParams{Type: input.DispatchTouchEventTypeTouchStart, TouchPoints: []*input.TouchPoint{{X: xy[0], Y: xy[1]}}}
		if _, err := cdp.Call(ctx, tg, input.DispatchTouchEvent, start); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, tg, input.DispatchTouchEvent, input.DispatchTouchEventParams{Type: input.DispatchTouchEventTypeTouchEnd, TouchPoints: []*input.TouchPoint{}})
		return err
	})
	do(t, ctx, what, func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.WaitEvent(page.LoadEventFired, nil, tap)(ctx, tg)
		return chromedp.Void{}, err
	})
	if got, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`sessionStorage.getItem('taps')`)); got != "touchstart click " {
		t.Errorf("%s: the element got %q, want a touch start then a click", what, got)
	}
}

// TestConsoleOnAPhone opens every page at 390×844: nothing overflows the
// page sideways, wide tables and the graph scroll in their own box,
// buttons are big enough to tap, every form control has a label, no
// resource comes from another origin and the policy forbids any; the
// approval gate is approved by a tap.
func TestConsoleOnAPhone(t *testing.T) {
	s := startServer(t)
	ctx := browser(t)
	id := awaitingApproval(t, s, "phone")
	// Rows in the settings tables too.
	s.call("PUT", "/api/v1/secrets/PROMETHEUS_BEARER_TOKEN_OF_THE_MONITORING_CLUSTER", map[string]any{"value": "x"}, nil)
	s.call("POST", "/api/v1/providers", map[string]any{"name": "prometheus-of-the-monitoring-cluster", "type": "prometheus",
		"url": "http://prometheus-operated.monitoring.svc.cluster.local:9090/with/a/long/path", "auth": map[string]any{"type": "bearer", "tokenSecret": "PROMETHEUS_BEARER_TOKEN_OF_THE_MONITORING_CLUSTER"}}, nil)
	phone(t, ctx)

	do(t, ctx, "open the login page", chromedp.Navigate(s.url+"/login"), chromedp.WaitVisible(chromedp.CSS("#client_id")))
	checkPage(t, ctx, "login")
	login(t, ctx, s, s.adminID, s.adminSK)
	checkPage(t, ctx, "deployments")

	do(t, ctx, "open the pipeline",
		chromedp.Navigate(s.url+"/pipelines/"+id+"?target=staging"),
		chromedp.WaitVisible(chromedp.CSS("#detail")),
	)
	waitFor(t, ctx, "the approval gate", `!!document.querySelector('button[data-action=approve]:not([disabled])')`)
	checkPage(t, ctx, "pipeline")
	// The graph keeps its size and scrolls in its own box when it is
	// wider than the phone.
	if w, _ := chromedp.Run(ctx, chromedp.Evaluate[[]int](`[document.querySelector('.graph svg').getBoundingClientRect().width, document.querySelector('.graph .scroll').clientWidth]`)); len(w) != 2 || w[1] > 390 {
		t.Errorf("graph width and its box: %v", w)
	}
	screenshot(t, ctx, "phone-pipeline.png", "")

	for _, p := range []struct{ path, sel string }{
		{"/pipelines/" + id + "/source", "table.diff"},
		{"/settings/credentials", "#credentials"},
		{"/settings/agents", "main h1"},
		{"/settings/secrets", "#secrets"},
		{"/settings/providers", "#providers"},
		{"/settings/windows", "#window-form"},
		{"/settings/users", "#credential-roles"},
		{"/settings/notifications", "main h1"},
		{"/settings/audit", "#audit"},
		{"/settings/tenant", "main h1"},
	} {
		do(t, ctx, "open "+p.path, chromedp.Navigate(s.url+p.path), chromedp.WaitVisible(chromedp.CSS(p.sel)))
		checkPage(t, ctx, p.path)
	}

	do(t, ctx, "back to the pipeline", chromedp.Navigate(s.url+"/pipelines/"+id+"?target=staging"), chromedp.WaitVisible(chromedp.CSS("button[data-action=approve]")))
	tapLoad(t, ctx, "tap approve", "button[data-action=approve]")
	do(t, ctx, "the page after the tap", chromedp.WaitVisible(chromedp.CSS("#flash")))
	if got := text(t, ctx, "#flash"); !strings.HasPrefix(got, "Approved") {
		t.Errorf("after tapping approve the page says %q", got)
	}
	waitFor(t, ctx, "the pipeline succeeded", `document.querySelector('.live-meta').dataset.status === 'SUCCEEDED'`)
}

// TestCSPBlocksOtherOrigins adds an image, a script, a stylesheet and a
// fetch of another origin to a console page: Chromium refuses each under
// the console's policy.
func TestCSPBlocksOtherOrigins(t *testing.T) {
	s := startServer(t)
	ctx := browser(t)
	login(t, ctx, s, s.adminID, s.adminSK)
	do(t, ctx, "add resources of another origin", chromedp.Evaluate[chromedp.Void](`(function () {
  window.__violations = [];
  document.addEventListener('securitypolicyviolation', function (e) { window.__violations.push(e.effectiveDirective + ' ' + e.blockedURI); });
  var cdn = 'https://cdn.example.invalid/';
  var i = document.createElement('img'); i.src = cdn + 'a.png'; document.body.appendChild(i);
  var sc = document.createElement('script'); sc.src = cdn + 'a.js'; document.body.appendChild(sc);
  var l = document.createElement('link'); l.rel = 'stylesheet'; l.href = cdn + 'a.css'; document.head.appendChild(l);
  fetch(cdn + 'a.json').catch(function () {});
})()`))
	waitFor(t, ctx, "four violations", `window.__violations.length >= 4`)
	got, _ := chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.__violations`))
	for _, want := range []string{"img-src https://cdn.example.invalid/a.png", "script-src-elem https://cdn.example.invalid/a.js", "style-src-elem https://cdn.example.invalid/a.css", "connect-src https://cdn.example.invalid/a.json"} {
		found := false
		for _, g := range got {
			found = found || g == want
		}
		if !found {
			t.Errorf("no violation %q among %v", want, got)
		}
	}
}

// focusJS describes the focused element and whether its focus shows: it
// matches :focus-visible and has an outline or a box shadow (for a graph
// node, its rectangle's thick stroke).
const focusJS = `(function () {
  var e = document.activeElement;
  if (!e || e === document.body) return {desc: 'body', visible: false};
  var d = e.tagName.toLowerCase() + (e.id ? '#' + e.id : '');
  ['data-action', 'data-target-link'].forEach(function (a) { if (e.getAttribute(a)) d += '[' + a + '=' + e.getAttribute(a) + ']'; });
  d += ' "' + (e.textContent || '').trim().replace(/\s+/g, ' ').slice(0, 40) + '"';
  var cs = getComputedStyle(e);
  var ring = (cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) > 0) || (cs.boxShadow && cs.boxShadow !== 'none');
  var r = e.querySelector && e.querySelector('rect');
  if (!ring && e instanceof SVGElement && r) {
    var probe = document.createElement('span');
    probe.style.color = 'var(--focus)';
    document.body.appendChild(probe);
    var focusColour = getComputedStyle(probe).color;
    probe.remove();
    var rs = getComputedStyle(r);
    ring = rs.stroke === focusColour && parseFloat(rs.strokeWidth) >= 5;
  }
  return {desc: d, visible: e.matches(':focus-visible') && ring,
    approve: e.matches('button[data-action=approve]'), link: e.closest('svg') ? (e.getAttribute('data-target-link') || '') : ''};
})()`

type focused struct {
	Desc    string `json:"desc"`
	Visible bool   `json:"visible"`
	Approve bool   `json:"approve"`
	Link    string `json:"link"`
}

// tabTo presses Tab (Shift+Tab when back) until the focused element
// satisfies stop, failing if some element reached on the way does not
// show its focus.
func tabTo(t *testing.T, ctx context.Context, what string, back bool, stop func(focused) bool) focused {
	t.Helper()
	var opts []chromedp.KeyOption
	if back {
		opts = append(opts, chromedp.KeyModifiers(chromedp.ModifierShift))
	}
	var path []string
	for range 80 {
		do(t, ctx, "press Tab", chromedp.KeyEvent(kb.Tab, opts...))
		f, err := chromedp.Run(ctx, chromedp.Evaluate[focused](focusJS))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		path = append(path, f.Desc)
		if !f.Visible {
			t.Errorf("%s: focus on %s does not show", what, f.Desc)
		}
		if stop(f) {
			return f
		}
	}
	t.Fatalf("%s: not reached with Tab; focus went %s", what, strings.Join(path, " → "))
	return focused{}
}

// TestConsoleByKeyboard uses the pipeline page with the keyboard only:
// Tab reaches the graph's target nodes, Enter on one opens its detail (no
// reload), Tab reaches the approve button, Enter approves and the pipeline
// goes on to prod; every element on the way shows its focus.
func TestConsoleByKeyboard(t *testing.T) {
	s := startServer(t)
	ctx := browser(t)
	id := awaitingApproval(t, s, "keys")
	login(t, ctx, s, s.adminID, s.adminSK)
	do(t, ctx, "open the pipeline",
		chromedp.Navigate(s.url+"/pipelines/"+id),
		chromedp.WaitVisible(chromedp.CSS("#detail")),
		chromedp.Evaluate[chromedp.Void](`window.__noReload = 4`),
	)
	if got := text(t, ctx, "#detail-title"); !strings.HasPrefix(got, "staging") {
		t.Fatalf("the detail shows %q first, want staging (waiting)", got)
	}

	// The graph's nodes are links in the tab order: prod's opens its detail.
	tabTo(t, ctx, "prod's node in the graph", false, func(f focused) bool { return f.Link == "prod" })
	do(t, ctx, "press Enter on prod's node", chromedp.KeyEvent(kb.Enter))
	waitFor(t, ctx, "prod's detail", `!!document.querySelector('#detail[data-target=prod]')`)
	waitFor(t, ctx, "no reload", `window.__noReload === 4`)
	waitFor(t, ctx, "focus stays on prod's node", `document.activeElement.matches('svg [data-target-link=prod]')`)
	tabTo(t, ctx, "staging's node, back", true, func(f focused) bool { return f.Link == "staging" })
	do(t, ctx, "press Enter on staging's node", chromedp.KeyEvent(kb.Enter))
	waitFor(t, ctx, "staging's detail", `!!document.querySelector('#detail[data-target=staging] button[data-action=approve]')`)

	tabTo(t, ctx, "the approve button", false, func(f focused) bool { return f.Approve })
	do(t, ctx, "press Enter on approve", func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.KeyEvent(kb.Enter))(ctx, tg)
		return chromedp.Void{}, err
	}, chromedp.WaitVisible(chromedp.CSS("#flash")))
	if got := text(t, ctx, "#flash"); !strings.HasPrefix(got, "Approved") {
		t.Errorf("after Enter on approve the page says %q", got)
	}
	waitFor(t, ctx, "prod deployed after the approval", `document.querySelector('.live-meta').dataset.status === 'SUCCEEDED' && !!document.querySelector('svg g.node[data-target=prod][data-status=SUCCEEDED]')`)
}
