// Guideline editor: a live preview rendered by the server (the same Markdown and sanitiser the
// labelers' page uses), asked for at most every 300 ms while the planner types.
(function () {
  "use strict";
  var area = document.querySelector("textarea[data-preview-url]");
  var out = document.getElementById("guideline-preview");
  var state = document.getElementById("preview-state");
  if (!area || !out) return;
  var url = area.getAttribute("data-preview-url");
  var token = area.form.querySelector("input[name=csrfmiddlewaretoken]").value;
  var timer = null, seq = 0, shown = 0;

  function render() {
    var mine = ++seq;
    var body = new FormData();
    body.append("body", area.value);
    body.append("csrfmiddlewaretoken", token);
    if (state) state.textContent = "…";
    fetch(url, { method: "POST", body: body, credentials: "same-origin", headers: { "X-CSRFToken": token } })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (d) {
        if (mine < shown) return; // an older answer arriving late
        shown = mine;
        out.innerHTML = d.html; // sanitised by the server (labeling.markup)
        if (state) state.textContent = "";
      })
      .catch(function () { if (state) state.textContent = "⚠"; });
  }
  area.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(render, 300);
  });
  // Leaving with unsaved text asks first.
  var saved = area.value, submitting = false;
  window.addEventListener("submit", function (e) { // after the confirm dialog's own listener
    if (e.target === area.form && !e.defaultPrevented) submitting = true;
  });
  window.addEventListener("beforeunload", function (e) {
    if (!submitting && area.value !== saved) { e.preventDefault(); e.returnValue = ""; }
  });
})();
