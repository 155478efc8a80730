// Planner pages: confirm dialogs, formset rows added in the page, and the dashboard's refresh.
(function () {
  "use strict";

  // <form data-confirm="..."> and <button data-confirm="...">: ask before submitting. A button's
  // data-confirm-field="name" posts name=1 once asked, so the server skips its own confirm page
  // (the one a page without script gets).
  document.addEventListener("submit", function (e) {
    var form = e.target;
    var button = e.submitter;
    var msg = (button && button.getAttribute("data-confirm")) || form.getAttribute("data-confirm");
    if (!msg) return;
    if (!window.confirm(msg)) { e.preventDefault(); return; }
    var field = button && button.getAttribute("data-confirm-field");
    if (field && !form.querySelector('input[name="' + field + '"]')) {
      var input = document.createElement("input");
      input.type = "hidden"; input.name = field; input.value = "1";
      form.appendChild(input);
    }
  });

  // Formsets: [data-formset] holds the management form, [data-rows] and a <template
  // data-empty-row> with Django's empty_form; [data-add-row] appends a numbered copy.
  document.querySelectorAll("[data-formset]").forEach(function (box) {
    var prefix = box.getAttribute("data-prefix");
    var total = box.querySelector('input[name="' + prefix + '-TOTAL_FORMS"]');
    var template = box.querySelector("template[data-empty-row]");
    var rows = box.querySelector("[data-rows]");
    var add = box.querySelector("[data-add-row]");
    if (!total || !template || !rows || !add) return;
    add.addEventListener("click", function () {
      var n = parseInt(total.value, 10);
      var html = template.innerHTML.replace(/__prefix__/g, String(n));
      var holder = document.createElement("div");
      holder.innerHTML = html.trim();
      var row = holder.firstElementChild;
      rows.appendChild(row);
      total.value = String(n + 1);
      var first = row.querySelector("input:not([type=hidden]):not([type=checkbox]):not([type=radio]), textarea");
      if (first) first.focus();
    });
    // A row marked for removal is dimmed.
    box.addEventListener("change", function (e) {
      if (e.target.name && /-DELETE$/.test(e.target.name)) {
        var row = e.target.closest("[data-row]");
        if (row) row.classList.toggle("removing", e.target.checked);
      }
    });
  });

  // Progress dashboard: fetch the same page's fragment every few seconds (not while the tab is
  // hidden) and swap it in.
  var dash = document.getElementById("dashboard");
  if (dash && dash.getAttribute("data-refresh-url")) {
    var url = dash.getAttribute("data-refresh-url");
    var every = 1000 * (parseInt(dash.getAttribute("data-refresh-seconds"), 10) || 10);
    var stamp = document.getElementById("updated-at");
    var busy = false;
    var refresh = function () {
      if (busy || document.hidden) return;
      busy = true;
      fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
        .then(function (html) {
          dash.innerHTML = html;
          dash.classList.remove("stale");
          if (stamp) stamp.textContent = new Date().toTimeString().slice(0, 8);
        })
        .catch(function () { dash.classList.add("stale"); })
        .then(function () { busy = false; });
    };
    setInterval(refresh, every);
    document.addEventListener("visibilitychange", function () { if (!document.hidden) refresh(); });
  }
})();
