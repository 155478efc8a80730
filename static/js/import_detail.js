// Import page: poll progress.json every second until the import is done or failed, update the
// bar and counts, and append report lines as they arrive. When it ends, reload once so the
// report is the server's paginated, filterable table.
(function () {
  "use strict";
  var box = document.getElementById("import-job");
  if (!box || box.getAttribute("data-finished") === "1") return;
  var url = box.getAttribute("data-progress-url");
  var after = parseInt(box.getAttribute("data-after"), 10);
  var filter = box.getAttribute("data-filter");
  var rows = document.getElementById("report-rows");
  var fmt = function (n) { return (n || 0).toLocaleString(); };

  function cell(text, cls) {
    var td = document.createElement("td");
    if (cls) td.className = cls;
    if (text !== undefined) td.textContent = text;
    return td;
  }
  function addRow(it) {
    if (filter && filter !== it.outcome && !(filter === "warning" && it.outcome === "accepted" && it.reason)) return;
    var tr = document.createElement("tr");
    tr.className = "item item-" + it.outcome;
    tr.appendChild(cell(String(it.position + 1), "num muted"));
    tr.appendChild(cell(it.name, "name"));
    var td = cell(undefined), badge = document.createElement("span");
    badge.className = "badge outcome-" + it.outcome; badge.textContent = it.outcome_display;
    td.appendChild(badge); tr.appendChild(td);
    tr.appendChild(cell(it.reason, "reason"));
    td = cell(undefined);
    if (it.image_url) {
      var a = document.createElement("a"); a.href = it.image_url; a.className = "thumb-link";
      var img = document.createElement("img"); img.src = it.thumbnail_url; img.className = "thumb-sm"; img.alt = "";
      a.appendChild(img); td.appendChild(a);
    }
    tr.appendChild(td);
    rows.appendChild(tr);
  }

  function poll() {
    fetch(url + "?after=" + after, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (d) {
        document.getElementById("job-status").textContent = d.status_display;
        document.getElementById("job-status").className = "status status-" + d.status;
        document.getElementById("job-bar").style.width = d.percent + "%";
        document.getElementById("job-progress-text").textContent =
          d.total === null ? "…" : fmt(d.processed) + " / " + fmt(d.total) + " (" + d.percent + "%)";
        Object.keys(d.counts).forEach(function (k) {
          var el = box.querySelector('[data-count="' + k + '"]');
          if (el) el.textContent = fmt(d.counts[k]);
        });
        if (d.error) { var e = document.getElementById("job-error"); e.textContent = d.error; e.hidden = false; }
        d.items.forEach(function (it) { addRow(it); after = Math.max(after, it.position); });
        if (d.finished) { window.location.reload(); return; }
        setTimeout(poll, d.items.length >= 100 ? 200 : 1000);
      })
      .catch(function () { setTimeout(poll, 3000); });
  }
  setTimeout(poll, 1000);
})();
