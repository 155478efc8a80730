// The review queue (templates/curation/review.html): bulk selection and keyboard shortcuts.
// J/K move between flags, Space selects, E keep, R reject the comment set, X exclude the photo,
// D duplicate of the keeper, ? help. With flags selected a key decides all of them (the bulk
// buttons), otherwise the current flag (its own buttons). No inline script (CSP).
(function () {
  "use strict";
  var form = document.getElementById("review-form");
  if (!form) return;
  var cards = Array.prototype.slice.call(form.querySelectorAll(".flag-card"));
  var boxes = Array.prototype.slice.call(form.querySelectorAll(".flag-select"));
  var all = document.getElementById("select-all");
  var counter = document.getElementById("selected-count");
  var help = document.getElementById("shortcut-help");
  var helpToggle = document.getElementById("shortcut-help-toggle");
  var current = -1;
  var KEYS = { e: "keep", r: "reject_comment", x: "exclude_photo", d: "mark_duplicate" };
  var countTemplate = counter ? (counter.getAttribute("data-template") || "{n}") : "{n}";

  function selected() {
    return boxes.filter(function (b) { return b.checked; });
  }

  function refresh() {
    var n = selected().length;
    if (counter) counter.textContent = n ? countTemplate.replace("{n}", String(n)) : "";
    if (all) all.checked = n > 0 && n === boxes.length;
    cards.forEach(function (card) {
      var box = card.querySelector(".flag-select");
      card.classList.toggle("is-selected", !!(box && box.checked));
    });
  }

  function focus(i) {
    if (!cards.length) return;
    current = Math.max(0, Math.min(cards.length - 1, i));
    cards.forEach(function (c, j) { c.classList.toggle("is-current", j === current); });
    cards[current].focus({ preventScroll: true });
    cards[current].scrollIntoView({ block: "nearest" });
  }

  function toggleHelp() {
    if (!help) return;
    help.hidden = !help.hidden;
    if (helpToggle) helpToggle.setAttribute("aria-expanded", String(!help.hidden));
  }

  boxes.forEach(function (b) { b.addEventListener("change", refresh); });
  if (all) all.addEventListener("change", function () {
    boxes.forEach(function (b) { b.checked = all.checked; });
    refresh();
  });
  if (helpToggle) helpToggle.addEventListener("click", toggleHelp);
  cards.forEach(function (card, i) {
    card.addEventListener("click", function (e) {
      if (e.target.closest("a, button, input, label")) return;
      focus(i);
    });
  });

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var t = e.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName)) && !t.classList.contains("flag-select")) return;
    var key = e.key.toLowerCase();
    if (key === "j") { e.preventDefault(); focus(current + 1); return; }
    if (key === "k") { e.preventDefault(); focus(current < 0 ? 0 : current - 1); return; }
    if (key === "?") { e.preventDefault(); toggleHelp(); return; }
    if (key === " " && current >= 0) {
      var box = cards[current].querySelector(".flag-select");
      if (box) { e.preventDefault(); box.checked = !box.checked; refresh(); }
      return;
    }
    var action = KEYS[key];
    if (!action) return;
    var button;
    if (selected().length) {
      button = form.querySelector("[data-bulk='" + action + "']");
    } else {
      if (current < 0) focus(0);
      if (current < 0) return;
      button = cards[current].querySelector("[data-key='" + key + "']");
    }
    if (!button) return;
    e.preventDefault();
    if (typeof form.requestSubmit === "function") form.requestSubmit(button); else button.click();
  });

  refresh();
  if (cards.length) focus(0);
})();
