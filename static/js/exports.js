// The export section of a snapshot page (templates/datasets/_snapshot_exports.html): every
// export still queued or running polls its progress.json and moves its bar; when one ends the
// page reloads once, so its links, problems and buttons are the server's.
(function () {
  "use strict";
  var rows = document.querySelectorAll('.export-row[data-active="1"]');
  if (!rows.length) return;
  var fmt = function (n) { return (n || 0).toLocaleString(); };

  function watch(row) {
    var url = row.getAttribute("data-progress-url");
    var status = row.querySelector("[data-export-status]");
    var bar = row.querySelector("[data-export-bar]");
    var text = row.querySelector("[data-export-text]");
    var error = row.querySelector("[data-export-error]");
    var template = text.textContent;
    function poll() {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.json(); })
        .then(function (d) {
          status.textContent = d.status_display;
          status.className = "status status-" + d.status;
          bar.style.width = d.percent + "%";
          bar.parentNode.setAttribute("aria-valuenow", String(d.percent));
          // The server's sentence with its four numbers replaced, so it stays in the page's language.
          var numbers = [d.shards_done, d.shards_total, d.samples_done, d.samples_total], i = 0;
          text.textContent = template.replace(/[0-9][0-9,.\u00a0]*/g, function () { return fmt(numbers[i++]); });
          if (d.error) { error.textContent = d.error; error.hidden = false; }
          if (d.finished) { window.location.reload(); return; }
          setTimeout(poll, 1500);
        })
        .catch(function () { setTimeout(poll, 4000); });
    }
    setTimeout(poll, 1000);
  }
  Array.prototype.forEach.call(rows, watch);
})();
