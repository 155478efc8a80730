// The snapshot create form (labeling/snapshot_views.py): a live count of what the freeze would
// include (GET /api/snapshots/preview/ as the fields change), only the chosen projects' comment
// types, the split fields of the chosen mode, and a note while the freeze runs. Without script
// the form works as it is: "Count" submits and the page shows the count.
(function () {
  "use strict";
  var form = document.getElementById("snapshot-form");
  if (!form) return;
  var out = document.getElementById("live-count");
  var url = form.getAttribute("data-preview-url");
  var timer = null;
  var seq = 0;

  function text(name) { return form.getAttribute("data-text-" + name) || ""; }
  function checked(name) {
    return Array.prototype.map.call(form.querySelectorAll('input[name="' + name + '"]:checked'),
      function (i) { return i.value; });
  }
  function fmt(n) { return Number(n).toLocaleString(); }
  function show(message, muted) {
    out.textContent = "";
    var span = document.createElement("span");
    if (muted) span.className = "muted";
    span.textContent = message;
    out.appendChild(span);
  }

  // Comment types: only those of the chosen projects (all when none is chosen); a hidden one is
  // unticked.
  function filterTypes() {
    var projects = checked("projects");
    form.querySelectorAll('input[name="comment_types"]').forEach(function (input) {
      var owners = (input.getAttribute("data-projects") || "").split(" ");
      var visible = !projects.length || projects.some(function (p) { return owners.indexOf(p) >= 0; });
      var row = input.closest("label") ? input.closest("label").parentNode : input.parentNode;
      row.hidden = !visible;
      if (!visible) input.checked = false;  // not sent: the freeze would refuse it
    });
  }

  // Split fields: those of the chosen mode.
  function showMode() {
    var mode = (form.querySelector('input[name="split_mode"]:checked') || {}).value || "ratios";
    form.querySelectorAll(".split-fields").forEach(function (box) {
      box.hidden = box.getAttribute("data-mode") !== mode;
    });
  }

  function count() {
    var projects = checked("projects");
    if (!projects.length) { show(text("choose"), true); return; }
    var params = new URLSearchParams();
    projects.forEach(function (p) { params.append("projects", p); });
    checked("categories").forEach(function (c) { params.append("categories", c); });
    checked("comment_types").forEach(function (t) { params.append("comment_types", t); });
    var minSets = form.querySelector('input[name="min_sets"]').value.trim();
    if (minSets) params.append("min_sets", minSets);
    var mine = ++seq;
    out.setAttribute("aria-busy", "true");
    show(text("counting"), true);
    fetch(url + "?" + params.toString(), { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
      .then(function (res) {
        if (mine !== seq) return;
        out.removeAttribute("aria-busy");
        if (!res.ok) { show(text("error"), false); return; }
        show(text("count").replace("{photos}", fmt(res.body.photos)).replace("{comments}", fmt(res.body.comments))
          .replace("{min_sets}", fmt(res.body.min_sets)), false);
        out.setAttribute("data-photos", res.body.photos);
        out.setAttribute("data-comments", res.body.comments);
      })
      .catch(function () { if (mine === seq) { out.removeAttribute("aria-busy"); show(text("error"), false); } });
  }

  function later() { clearTimeout(timer); timer = setTimeout(count, 300); }

  form.addEventListener("change", function (e) {
    if (e.target.name === "projects") filterTypes();
    if (e.target.name === "split_mode") showMode();
    if (["projects", "categories", "comment_types", "min_sets"].indexOf(e.target.name) >= 0) later();
  });
  form.addEventListener("input", function (e) { if (e.target.name === "min_sets") later(); });

  form.addEventListener("submit", function (e) {
    var button = e.submitter;
    if (button && button.value === "count") {  // counted in the page, no round trip
      e.preventDefault();
      count();
      return;
    }
    var status = document.getElementById("freeze-status");
    if (status) status.textContent = text("freezing");
    if (button) {
      // The button's own name=value must still be posted once it is disabled.
      var hidden = document.createElement("input");
      hidden.type = "hidden"; hidden.name = button.name; hidden.value = button.value;
      form.appendChild(hidden);
      setTimeout(function () { button.disabled = true; }, 0);
    }
  });

  filterTypes();
  showMode();
  if (!out.hasAttribute("data-server") && checked("projects").length) count();
}());
