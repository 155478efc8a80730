// A curation run's page (templates/curation/run.html): while the run is queued or running, poll
// its API detail and move each step's bar, numbers and state; when a step or the run changes
// state the page reloads once, so counts, reasons and buttons are the server's.
(function () {
  "use strict";
  var run = document.getElementById("run");
  if (!run || run.getAttribute("data-active") !== "1") return;
  var url = run.getAttribute("data-api-url");
  var fmt = function (n) { return (n || 0).toLocaleString(); };
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (d) {
        var changed = d.status !== "queued" && d.status !== "running";
        d.progress.forEach(function (s) {
          var row = run.querySelector('[data-step="' + s.name + '"]');
          if (!row) return;
          var state = row.querySelector("[data-step-state]");
          if (state && state.className.indexOf("status-" + s.state) < 0) changed = true;
          var bar = row.querySelector("[data-step-bar]");
          if (bar) {
            bar.style.width = s.percent + "%";
            bar.parentNode.setAttribute("aria-valuenow", String(s.percent));
          }
          var text = row.querySelector("[data-step-text]");
          if (text) {
            var numbers = [s.done, s.total], i = 0;
            text.textContent = text.textContent.replace(/[0-9][0-9,.\u00a0]*/g, function () { return fmt(numbers[i++]); });
          }
        });
        if (changed) { window.location.reload(); return; }
        setTimeout(poll, 2000);
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 1500);
})();
