// The image grid's bulk actions: pick photos (or every photo on the page), choose an action; only
// the fields that action uses are shown. Without this script every field shows and works.
(function () {
  "use strict";
  var form = document.querySelector("[data-bulk-form]");
  if (!form) return;
  var boxes = Array.prototype.slice.call(document.querySelectorAll('input[name="ids"][form="' + form.id + '"]'));
  var all = form.querySelector("[data-select-all]");
  var count = form.querySelector("[data-selected-count]");
  var submit = form.querySelector("[data-bulk-submit]");
  var action = form.querySelector('select[name="action"]');
  var template = form.getAttribute("data-msg-selected") || "__N__";

  function update() {
    var n = boxes.filter(function (b) { return b.checked; }).length;
    all.checked = n > 0 && n === boxes.length;
    all.indeterminate = n > 0 && n < boxes.length;
    count.textContent = template.replace("__N__", String(n));
    submit.disabled = n === 0;
    boxes.forEach(function (b) { b.closest("li").classList.toggle("picked", b.checked); });
  }

  function showFields() {
    form.querySelectorAll("[data-for-action]").forEach(function (field) {
      var shown = field.getAttribute("data-for-action").split(" ").indexOf(action.value) !== -1;
      field.hidden = !shown;
      field.querySelectorAll("select, input").forEach(function (el) { el.disabled = !shown; });
    });
  }

  form.querySelector("[data-pick-all]").hidden = false;
  count.hidden = false;
  all.addEventListener("change", function () {
    boxes.forEach(function (b) { b.checked = all.checked; });
    update();
  });
  boxes.forEach(function (b) { b.addEventListener("change", update); });
  action.addEventListener("change", showFields);
  update();
  showFields();
})();
