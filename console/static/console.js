// Sortie console: live updates without reloading. The server renders every
// fragment; this script only listens to the event stream and swaps the
// affected fragment in.
(function () {
  "use strict";
  var live = document.getElementById("live");
  var banner = document.getElementById("banner");

  function say(text, link) {
    if (!banner) return;
    banner.textContent = text + " ";
    if (link) {
      var a = document.createElement("a");
      a.href = "/login?reason=expired&next=" + encodeURIComponent(location.pathname + location.search);
      a.textContent = "Log in again";
      banner.appendChild(a);
    }
    banner.hidden = false;
  }

  function expired() {
    say("Your session expired, so live updates stopped.", true);
  }

  // Confirm dangerous forms that ask for it.
  document.addEventListener("submit", function (e) {
    var f = e.target;
    var q = f.getAttribute("data-confirm");
    if (q && !window.confirm(q)) e.preventDefault();
  });

  if (!live || !window.EventSource || !window.fetch) return;

  var kind = live.getAttribute("data-live");
  var pipeline = live.getAttribute("data-pipeline");

  function fragmentURL() {
    if (kind === "pipeline") {
      var t = live.getAttribute("data-target") || "";
      return "/console/fragments/pipelines/" + encodeURIComponent(pipeline) + (t ? "?target=" + encodeURIComponent(t) : "");
    }
    return "/console/fragments/list" + location.search;
  }

  var inflight = false, again = false, timer = null;
  function refresh() {
    if (inflight) { again = true; return; }
    inflight = true;
    fetch(fragmentURL(), { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) {
        if (r.status === 401) { expired(); stream.close(); return null; }
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.text();
      })
      .then(function (html) {
        if (html == null) return;
        var focused = document.activeElement;
        var key = focused && live.contains(focused) ? focusKey(focused) : null;
        var next = document.createElement("div");
        next.innerHTML = html;
        // A form that asks for a reason is not swapped away while open: the
        // same element, with what is being typed, takes the place of its
        // fresh copy (which the fragment still has while the question is
        // open to answer).
        var kept = null;
        var caret = focused && typeof focused.selectionStart === "number" ? [focused.selectionStart, focused.selectionEnd] : null;
        live.querySelectorAll("details.ask[open]").forEach(function (d) {
          // The reason field's id names the action, target and step.
          var r = d.querySelector("input[name=reason][id]");
          var f = d.querySelector("form");
          var fresh = r ? next.querySelector("details.ask #" + CSS.escape(r.id)) :
            f && next.querySelector('details.ask form[action="' + CSS.escape(f.getAttribute("action")) + '"]');
          if (!fresh) return;
          if (d.contains(focused)) kept = focused;
          fresh.closest("details").replaceWith(d);
        });
        live.replaceChildren.apply(live, Array.prototype.slice.call(next.childNodes));
        if (kept) {
          kept.focus();
          if (caret) { try { kept.setSelectionRange(caret[0], caret[1]); } catch (e) { /* not a text field */ } }
        } else if (key) {
          var el = live.querySelector(key);
          if (el) el.focus();
        }
        var meta = live.querySelector(".live-meta");
        var st = document.getElementById("pipeline-status");
        if (meta && st) {
          var s = meta.getAttribute("data-status");
          st.innerHTML = "";
          var b = document.createElement("span");
          b.className = "badge s-" + s.toLowerCase();
          b.textContent = s.replace(/_/g, " ");
          st.appendChild(b);
        }
      })
      .catch(function () { /* the next event retries */ })
      .then(function () {
        inflight = false;
        if (again) { again = false; schedule(); }
      });
  }
  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(refresh, 120);
  }

  // focusKey finds the focused control again after a swap.
  function focusKey(el) {
    if (el.id) return "#" + CSS.escape(el.id);
    var a = el.getAttribute("data-action"), t = el.getAttribute("data-target-link");
    if (a) return '[data-action="' + CSS.escape(a) + '"]';
    if (t) return '[data-target-link="' + CSS.escape(t) + '"]';
    return null;
  }

  var url = "/console/events" + (kind === "pipeline" ? "?pipeline=" + encodeURIComponent(pipeline) : "");
  var stream = new EventSource(url);
  var opened = false;
  stream.onmessage = schedule;
  stream.addEventListener("expired", function () { stream.close(); expired(); });
  stream.onopen = function () {
    // After a reconnection, catch up on whatever was missed.
    if (opened) schedule();
    opened = true;
  };
  stream.onerror = function () {
    if (stream.readyState === EventSource.CLOSED) {
      fetch("/console/session", { credentials: "same-origin" }).then(function (r) {
        if (r.status === 401) expired();
        else say("Live updates stopped; reload the page.", false);
      }, function () { say("The server is unreachable; live updates stopped.", false); });
    }
  };

  // Selecting a target swaps the detail in place (the link still works
  // without the script).
  if (kind === "pipeline") {
    live.addEventListener("click", function (e) {
      var a = e.target.closest && e.target.closest("[data-target-link]");
      if (!a || e.ctrlKey || e.metaKey || e.shiftKey) return;
      e.preventDefault();
      var t = a.getAttribute("data-target-link");
      live.setAttribute("data-target", t);
      history.replaceState(null, "", "?target=" + encodeURIComponent(t));
      refresh();
    });
  }
})();
