/* The labeling page (templates/labeling/label.html): one photo, a text box per comment type
 * with a live counter and the rule messages (TextRules mirrors the server), submit / skip /
 * report through the labeler flow of the API. The next photo is leased and its image loaded
 * ahead, so it shows at once after a submit. The photo opens full screen (tap it, or Z);
 * keyboard shortcuts are listed by "?". A submit the rules block here is reported to the
 * server with the rule codes (POST .../blocked/), once per attempt, so planners see it.
 * No framework.
 */
(function () {
  "use strict";

  var cfg = JSON.parse(document.getElementById("label-config").textContent);
  var R = window.TextRules;
  var S = cfg.strings;
  var $ = function (id) { return document.getElementById(id); };

  var app = $("label-app");
  var form = $("comment-form");
  var frame = $("photo-frame");
  var preloadBox = $("preload");
  var loading = $("photo-loading");
  var broken = $("photo-broken");
  var submitBtn = $("submit-btn");
  var skipBtn = $("skip-btn");
  var reportBtn = $("report-btn");
  var errorBox = $("task-error");
  var errorText = $("task-error-text");
  var retryBtn = $("retry-btn");
  var toast = $("toast");
  var examplesDialog = $("examples-dialog");
  var reportDialog = $("report-dialog");
  var reportForm = $("report-form");
  var keysDialog = $("keys-dialog");
  var zoomDialog = $("zoom-dialog");
  var zoomImg = $("zoom-img");
  var zoomBtn = $("zoom-btn");
  var alreadyBox = $("already-box");
  var actions = form.querySelector(".task-actions");
  var fine = window.matchMedia && window.matchMedia("(hover: hover) and (pointer: fine)").matches;

  R.configurePii(cfg.pii);  // the server's personal-information patterns, run live
  var exampleKeys = new Set(cfg.example_texts.map(R.comparable));
  var ownKeys = new Set();  // texts submitted from this page (the server knows the rest)
  var fields = cfg.comment_types.map(function (ct) {
    return {
      ct: ct, rules: Object.assign({}, cfg.rules, { min_length: ct.min_length, max_length: ct.max_length }),
      box: $("ct-" + ct.slug + "-field"), input: $("ct-" + ct.slug),
      counter: $("ct-" + ct.slug + "-count"), msgs: $("ct-" + ct.slug + "-msgs"),
      result: null, touched: false, server: []
    };
  });

  var queue = [];          // leased assignments, the one shown first
  var finished = new Set(); // ids submitted, skipped or reported here
  var current = null;
  var busy = false;
  var topping = null;      // the promise of a top-up in flight
  var retry = null;

  // ------------------------------------------------------------------ helpers

  function csrfToken() {
    var m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (m) return decodeURIComponent(m[1]);
    var input = app.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return (x + 0x100).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  /** POST JSON; resolves {status, data} for any HTTP answer, rejects on a network failure. */
  function post(url, body, headers) {
    var h = { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrfToken() };
    Object.assign(h, headers || {});
    return fetch(url, { method: "POST", credentials: "same-origin", headers: h, body: JSON.stringify(body || {}) })
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (data) { return { status: r.status, data: data }; });
      });
  }

  function assignmentUrl(a, action) { return cfg.urls.assignment.replace("{id}", a.id) + action + "/"; }

  var toastTimer = null;
  function flash(text) {
    // Under the page's bar while it is on screen, else at the top of the screen.
    toast.style.top = Math.max(8, app.querySelector(".label-bar").getBoundingClientRect().bottom + 8) + "px";
    toast.textContent = text || "";
    toast.classList.toggle("show", !!text);
    clearTimeout(toastTimer);
    if (text) toastTimer = setTimeout(function () { toast.classList.remove("show"); }, 2500);
  }

  function showError(text, again) {
    retry = again || null;
    errorText.textContent = text;
    retryBtn.hidden = !again;
    errorBox.hidden = false;
  }

  function clearError() { errorBox.hidden = true; retry = null; }

  function setProgress(p) {
    if (!p) return;
    var done = p.done, cap = p.cap;
    $("progress-done").textContent = done;
    $("progress-cap").textContent = cap;
    var bar = $("progress-bar");
    bar.setAttribute("aria-valuenow", done);
    bar.setAttribute("aria-valuemax", cap);
    bar.firstElementChild.style.width = (cap ? Math.min(100, 100 * done / cap) : 100) + "%";
    app.querySelectorAll("[data-done]").forEach(function (el) { el.textContent = done; });
    app.querySelectorAll("[data-cap]").forEach(function (el) { el.textContent = cap; });
  }

  /** Show a full-page state instead of the task: cap_reached, no_work or closed. */
  function showState(state, detail) {
    app.dataset.state = state;
    $("task").hidden = true;
    ["cap_reached", "no_work", "closed"].forEach(function (s) { $("state-" + s).hidden = s !== state; });
    var page = $("state-" + state);
    var d = page.querySelector("[data-detail]");
    if (d && detail) d.textContent = detail;
    current = null;
    queue = [];
    updateButtons();
  }

  function showTask() {
    app.dataset.state = "task";
    $("task").hidden = false;
    ["cap_reached", "no_work", "closed"].forEach(function (s) { $("state-" + s).hidden = true; });
  }

  // ------------------------------------------------------------------ rules, live

  function counterText(f) {
    var n = f.result.length, min = f.ct.min_length, max = f.ct.max_length;
    if (n < min) return R.format(S.counter_min, { n: n, min: min });
    if (max && n > max) return R.format(S.counter_max, { n: n, max: max });
    return R.format(S.counter_ok, { n: n });
  }

  function validate(f) {
    f.result = R.check(f.input.value, f.rules, { exampleKeys: exampleKeys, ownPrevious: ownKeys });
    var n = f.result.length;
    f.counter.textContent = counterText(f);
    var lengthState = n < f.ct.min_length ? "is-short" : (f.ct.max_length && n > f.ct.max_length ? "is-over" : "is-long-enough");
    f.counter.className = "counter " + lengthState + (f.result.ok && !f.server.length ? " is-ok" : "");
    var msgs = [];
    var codes = new Set();
    if (f.touched) {
      f.result.violations.forEach(function (v) {
        codes.add(v.code);
        // An empty box is not "too short (now 0)": it asks for the comment.
        var text = v.code === "too_short" && n === 0 ? R.format(S.empty, { min: f.ct.min_length }) : R.message(cfg.messages, v);
        msgs.push({ code: v.code, text: text });
      });
    }
    f.server.forEach(function (e) { if (!codes.has(e.code)) msgs.push({ code: e.code, text: e.message, server: true }); });
    f.msgs.textContent = "";
    msgs.forEach(function (m) {
      var li = document.createElement("li");
      li.textContent = m.text;
      li.dataset.code = m.code;
      if (m.server) li.className = "from-server";
      f.msgs.appendChild(li);
    });
    var bad = msgs.length > 0;
    f.box.classList.toggle("has-error", bad);
    f.box.classList.toggle("is-valid", f.result.ok && !f.server.length && f.input.value !== "");
    f.input.setAttribute("aria-invalid", bad ? "true" : "false");
  }

  function allOk() {
    return fields.every(function (f) { return f.result && f.result.ok && !f.server.length; });
  }

  function updateButtons() {
    var ready = !!current && !busy;
    // Texts that break a rule leave the button pressable (it says what to fix and the attempt
    // is counted for the planners) but marked as not ready.
    submitBtn.disabled = !ready;
    submitBtn.setAttribute("aria-disabled", ready && allOk() ? "false" : "true");
    zoomBtn.disabled = !current || !!current.broken;
    skipBtn.disabled = !ready;
    reportBtn.disabled = !ready;
    fields.forEach(function (f) { f.input.disabled = !current; });
    form.setAttribute("aria-busy", busy ? "true" : "false");
  }

  fields.forEach(function (f) {
    f.input.addEventListener("input", function () {
      // A box emptied again shows the neutral counter, not the red messages of what was there.
      f.touched = f.input.value !== "";
      f.server = [];
      validate(f);
      updateButtons();
    });
    f.input.addEventListener("blur", function () {
      if (f.input.value !== "" && !f.touched) { f.touched = true; validate(f); }
    });
    validate(f);
  });

  // ------------------------------------------------------------------ photos

  function preload(a) {
    if (a.img) return;
    var img = new Image();
    img.decoding = "async";
    img.className = "photo";
    img.alt = S.photo_alt;
    img.dataset.assignment = a.id;
    if (a.image.width && a.image.height) { img.width = a.image.width; img.height = a.image.height; }
    img.addEventListener("error", function () { a.broken = true; if (current === a) { broken.hidden = false; updateButtons(); } });
    img.src = a.image.url;
    preloadBox.appendChild(img);
    a.img = img;
  }

  function merge(list) {
    (list || []).forEach(function (a) {
      if (finished.has(a.id) || queue.some(function (q) { return q.id === a.id; })) return;
      a.key = uuid();
      queue.push(a);
      preload(a);
    });
  }

  function show(a) {
    current = a;
    showTask();
    clearError();
    preload(a);
    var old = $("photo");
    a.img.id = "photo";
    if (old !== a.img) {
      frame.insertBefore(a.img, old);
      old.remove();
    }
    a.img.hidden = false;
    loading.hidden = true;
    broken.hidden = !a.broken;
    app.dataset.assignment = a.id;
    fields.forEach(function (f) { f.input.value = ""; f.touched = false; f.server = []; validate(f); });
    updateButtons();
    if (fine && fields.length) fields[0].input.focus({ preventScroll: true });
    queue.slice(1).forEach(preload);
  }

  function loadingState() {
    current = null;
    var old = $("photo");
    old.hidden = true;
    loading.hidden = false;
    broken.hidden = true;
    updateButtons();
  }

  /** Ask for work and show it (first load, or when nothing is fetched ahead). */
  function loadNext() {
    showTask();
    loadingState();
    clearError();
    return post(cfg.urls.next, { count: 2 }).then(function (r) {
      if (r.status === 200) {
        setProgress(r.data.progress);
        if (r.data.state === "ok" && r.data.assignments && r.data.assignments.length) {
          merge(r.data.assignments);
          if (queue.length) { show(queue[0]); return; }
        }
        var state = r.data.state === "cap_reached" ? "cap_reached" : "no_work";
        showState(state, r.data.detail);
      } else if (r.status === 403 || r.status === 409) {
        showState("closed", r.data.detail || S.not_member);
      } else {
        showError(r.data.detail || S.server, loadNext);
      }
    }, function () { showError(S.network, loadNext); });
  }

  /** Keep one photo fetched ahead behind the shown one. Quiet: a failure is retried next time. */
  function topUp() {
    if (topping) return topping;
    topping = post(cfg.urls.next, { count: 2 }).then(function (r) {
      if (r.status === 200) {
        setProgress(r.data.progress);
        if (r.data.state === "ok") merge(r.data.assignments);
      }
    }, function () {}).then(function () { topping = null; });
    return topping;
  }

  /** The shown photo is done (submitted, skipped, reported or lost): show the next one. */
  function advance(message) {
    if (current) finished.add(current.id);
    queue = queue.filter(function (a) { return !finished.has(a.id); });
    var old = current;
    current = null;
    if (old && old.img && old.img.parentNode === preloadBox) old.img.remove();
    if (queue.length) {
      show(queue[0]);
      if (message) flash(message);
      if (queue.length < 2) topUp();
      return;
    }
    loadingState();
    (topping || Promise.resolve()).then(function () {
      if (queue.length) { show(queue[0]); if (message) flash(message); topUp(); }
      else loadNext();
    });
  }

  // ------------------------------------------------------------------ actions

  function texts() {
    var out = {};
    fields.forEach(function (f) { out[f.ct.slug] = f.input.value; });
    return out;
  }

  function serverErrors(errors) {
    var general = [];
    Object.keys(errors || {}).forEach(function (slug) {
      var f = fields.find(function (x) { return x.ct.slug === slug; });
      var list = (errors[slug] || []).map(function (e) { return typeof e === "string" ? { code: "server", message: e } : e; });
      if (f) { f.server = list; f.touched = true; validate(f); }
      else list.forEach(function (e) { general.push(e.message); });
    });
    return general;
  }

  var reportedAttempt = "";
  /** Tell the server which rules stopped this submit attempt (the texts never reach it). The
   * same texts submitted again are the same attempt: reported once. Fire and forget. */
  function reportBlocked(a) {
    var codes = [];
    fields.forEach(function (f) {
      f.result.violations.forEach(function (v) { if (codes.indexOf(v.code) < 0) codes.push(v.code); });
    });
    if (!codes.length) return;  // only the server's refusals: the server counted them
    var attempt = a.id + "\n" + JSON.stringify(texts());
    if (attempt === reportedAttempt) return;
    reportedAttempt = attempt;
    post(cfg.urls.assignment.replace("{id}", a.id) + "blocked/", { rules: codes }).catch(function () {});
  }

  function hideAlready() { alreadyBox.hidden = true; }

  /** Another tab (or device) had submitted this photo: say so and show what was stored. */
  function showAlready(comments) {
    var list = $("already-list");
    list.textContent = "";
    (comments || []).forEach(function (c) {
      var ct = cfg.comment_types.find(function (t) { return t.slug === c.comment_type; });
      var dt = document.createElement("dt");
      dt.textContent = ct ? ct.name : c.comment_type;
      var dd = document.createElement("dd");
      dd.textContent = c.text;
      list.appendChild(dt);
      list.appendChild(dd);
    });
    alreadyBox.hidden = false;
  }

  function submit() {
    if (busy || !current) return;
    fields.forEach(function (f) { if (f.input.value !== "") f.touched = true; validate(f); });
    if (!allOk()) {
      fields.forEach(function (f) { f.touched = true; validate(f); });
      var bad = fields.find(function (f) { return !(f.result.ok && !f.server.length); });
      if (bad) bad.input.focus();
      flash(S.fix_first);
      updateButtons();
      reportBlocked(current);
      return;
    }
    hideAlready();
    var a = current;
    var values = texts();
    busy = true;
    clearError();
    submitBtn.classList.add("is-sending");
    updateButtons();
    var done = function () { busy = false; submitBtn.classList.remove("is-sending"); updateButtons(); };
    post(assignmentUrl(a, "submit"), { comments: values }, { "Idempotency-Key": a.key }).then(function (r) {
      done();
      if (current !== a) return;
      var d = r.data || {};
      if (r.status === 200 || r.status === 201) {
        setProgress(d.progress);
        var stored = d.already_submitted ? (d.comments || []).map(function (c) { return c.text; })
          : Object.keys(values).map(function (k) { return values[k]; });
        stored.forEach(function (t) { var key = R.comparable(t); if (key) ownKeys.add(key); });
        if (d.already_submitted) { showAlready(d.comments); advance(null); }
        else advance(S.saved);
      } else if (r.status === 400) {
        var general = serverErrors(d.errors);
        if (general.length || !d.errors) showError(general.join(" ") || d.detail || S.server, null);
        updateButtons();
      } else if (r.status === 409 && d.code === "cap_reached") {
        finished.add(a.id);
        showState("cap_reached", d.detail);
      } else if (r.status === 409 || r.status === 404) {
        advance(d.detail || S.lease_lost);
      } else if (r.status === 403) {
        showState("closed", d.detail || S.not_member);
      } else {
        showError(d.detail || S.server, submit);
      }
    }, function () { done(); showError(S.network, submit); });
  }

  function close(action, body, message) {
    if (busy || !current) return;
    hideAlready();
    var a = current;
    busy = true;
    clearError();
    updateButtons();
    var again = function () { close(action, body, message); };
    post(assignmentUrl(a, action), body).then(function (r) {
      busy = false;
      if (current !== a) { updateButtons(); return; }
      var d = r.data || {};
      if (r.status === 200 || r.status === 409 || r.status === 404) {
        setProgress(d.progress);
        advance(r.status === 200 ? message : d.detail);
      } else if (r.status === 403) {
        showState("closed", d.detail || S.not_member);
      } else {
        updateButtons();
        showError(d.detail || (d.reason && d.reason.join ? d.reason.join(" ") : "") || S.server, again);
      }
    }, function () { busy = false; updateButtons(); showError(S.network, again); });
  }

  form.addEventListener("submit", function (e) { e.preventDefault(); submit(); });
  skipBtn.addEventListener("click", function () { close("skip", {}, S.skipped); });
  retryBtn.addEventListener("click", function () { var again = retry; clearError(); if (again) again(); });
  $("nowork-retry").addEventListener("click", function () { loadNext(); });

  // Ctrl/Cmd+Enter submits. While a Korean IME is still composing a syllable, wait for it to
  // land in the box first. Enter alone in a box that is not the last moves to the next box.
  var submitAfterComposition = false;
  document.addEventListener("keydown", function (e) {
    if (e.key !== "Enter" || anyDialogOpen() || !current) return;
    if (e.ctrlKey || e.metaKey) {
      e.preventDefault();
      if (e.isComposing || e.keyCode === 229) submitAfterComposition = true;
      else submit();
      return;
    }
    if (e.shiftKey || e.altKey || e.isComposing || e.keyCode === 229) return;
    var i = fields.findIndex(function (f) { return f.input === e.target; });
    if (i >= 0 && i < fields.length - 1) {
      e.preventDefault();
      fields[i + 1].input.focus();
    }
  });
  document.addEventListener("compositionend", function () {
    if (!submitAfterComposition) return;
    submitAfterComposition = false;
    setTimeout(function () { fields.forEach(validate); updateButtons(); submit(); }, 0);
  });

  // ------------------------------------------------------------------ dialogs

  function openDialog(d) {
    if (typeof d.showModal === "function") d.showModal(); else d.setAttribute("open", "");
  }

  function closeDialog(d) {
    if (typeof d.close === "function") d.close(); else d.removeAttribute("open");
  }

  function anyDialogOpen() {
    return [examplesDialog, reportDialog, keysDialog, zoomDialog].some(function (d) { return d.open; });
  }

  [examplesDialog, reportDialog, keysDialog].forEach(function (d) {
    d.addEventListener("click", function (e) {
      if (e.target === d || e.target.closest("[data-close]")) closeDialog(d);
    });
  });
  function openExamples() { openDialog(examplesDialog); }
  function openReport() {
    if (!current || busy) return;
    reportForm.reset();
    openDialog(reportDialog);
  }
  function openKeys() { openDialog(keysDialog); }
  $("examples-btn").addEventListener("click", openExamples);
  reportBtn.addEventListener("click", openReport);
  $("keys-btn").addEventListener("click", openKeys);
  $("already-ok").addEventListener("click", function () {
    hideAlready();
    if (fields.length && !fields[0].input.disabled) fields[0].input.focus({ preventScroll: true });
  });

  // The photo full screen: tap it (or the corner button, or Z). The browser's own pinch zooms
  // it there; a tap, Escape or the back button closes it (opening adds a history entry).
  function openZoom() {
    if (!current || current.broken || zoomDialog.open) return;
    zoomImg.src = current.image.url;
    zoomImg.alt = S.photo_alt;
    openDialog(zoomDialog);
    try { history.pushState({ labelZoom: true }, ""); } catch (err) { /* sandboxed: no back button */ }
  }
  function closeZoom(fromHistory) {
    if (!zoomDialog.open) return;
    closeDialog(zoomDialog);
    if (!fromHistory && history.state && history.state.labelZoom) history.back();
  }
  frame.addEventListener("click", function (e) {
    if (e.target.closest("#zoom-btn") || e.target.id === "photo") openZoom();
  });
  zoomDialog.addEventListener("click", function () { closeZoom(false); });
  zoomDialog.addEventListener("cancel", function (e) { e.preventDefault(); closeZoom(false); });
  window.addEventListener("popstate", function () { closeZoom(true); });

  // Shortcuts: single keys when not typing in a box; with Alt (Option) held while typing. e.code,
  // so they work with a Korean keyboard layout too.
  var SHORTCUTS = {
    KeyS: function () { if (current && !busy) close("skip", {}, S.skipped); },
    KeyR: openReport,
    KeyE: openExamples,
    KeyZ: openZoom,
    Slash: openKeys
  };
  function typingIn(el) {
    return !!el && (el.isContentEditable || /^(TEXTAREA|INPUT|SELECT)$/.test(el.tagName));
  }
  document.addEventListener("keydown", function (e) {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.isComposing || e.keyCode === 229) return;
    if (anyDialogOpen() || app.dataset.state !== "task" && e.code !== "Slash") return;
    var run = SHORTCUTS[e.code];
    if (!run) return;
    if (e.code === "Slash" ? !(e.shiftKey || e.key === "?") : e.shiftKey) return;  // "?" is Shift+/
    if (typingIn(e.target) && !e.altKey) return;
    e.preventDefault();
    run();
  });

  // A focused box stays above the sticky buttons and, with a phone's keyboard open, inside the
  // part of the page that is still visible (visualViewport).
  function keepInView(el) {
    if (!el || !typingIn(el) || !form.contains(el)) return;
    var vv = window.visualViewport;
    var top = vv ? vv.offsetTop : 0;
    var bottom = top + (vv ? vv.height : window.innerHeight);
    var bar = actions.getBoundingClientRect();
    if (bar.top > top && bar.top < bottom) bottom = bar.top;
    var r = el.getBoundingClientRect();
    if (r.bottom > bottom - 8) window.scrollBy(0, Math.min(r.bottom - bottom + 8, r.top - top - 8));
    else if (r.top < top + 8) window.scrollBy(0, r.top - top - 8);
  }
  form.addEventListener("focusin", function (e) { keepInView(e.target); });
  if (window.visualViewport) {
    window.visualViewport.addEventListener("resize", function () { keepInView(document.activeElement); });
  }
  reportForm.addEventListener("submit", function (e) {
    e.preventDefault();
    var reason = reportForm.querySelector("input[name=reason]:checked");
    if (!reason) { reportForm.querySelector("input[name=reason]").focus(); return; }
    var note = $("report-note").value;
    closeDialog(reportDialog);
    close("report", { reason: reason.value, note: note }, S.reported);
  });

  // ------------------------------------------------------------------ start

  setProgress({ done: cfg.done, cap: cfg.cap });
  if (!cfg.member || !cfg.active) {
    loading.hidden = true;
    showState("closed");
  } else {
    loadNext();
  }
})();
