// Import form: show the panel of the chosen mode, filter subcategories by category,
// accept dropped files, and upload with a progress bar (XMLHttpRequest upload events).
(function () {
  "use strict";
  var form = document.getElementById("import-form");
  if (!form) return;
  var msg = function (k) { return form.getAttribute("data-msg-" + k) || ""; };

  // Mode panels
  var radios = form.querySelectorAll('input[name="mode"]');
  function showMode() {
    var mode = (form.querySelector('input[name="mode"]:checked') || {}).value || "files";
    form.querySelectorAll(".mode-panel").forEach(function (p) { p.hidden = p.getAttribute("data-mode") !== mode; });
    form.querySelectorAll(".tab").forEach(function (t) { t.classList.toggle("selected", t.querySelector("input").checked); });
  }
  radios.forEach(function (r) { r.addEventListener("change", showMode); });
  showMode();

  // Subcategories of the chosen category only
  var cat = document.getElementById("id_category"), sub = document.getElementById("id_subcategory");
  function filterSubs() {
    var c = cat.value;
    Array.prototype.forEach.call(sub.options, function (o) {
      if (!o.value) return;
      var ok = !c || o.getAttribute("data-category") === c;
      o.hidden = !ok; o.disabled = !ok;
      if (!ok && o.selected) sub.value = "";
    });
  }
  if (cat && sub) { cat.addEventListener("change", filterSubs); filterSubs(); }

  // Files: drag and drop, and a summary line
  var input = document.getElementById("id_files"), zone = document.getElementById("dropzone");
  var summary = document.getElementById("file-summary");
  function summarise() {
    var n = input.files.length, bytes = 0;
    for (var i = 0; i < n; i++) bytes += input.files[i].size;
    summary.textContent = n ? n + " " + msg("files") + " · " + (bytes / 1048576).toFixed(1) + " MB" : "";
  }
  if (input && zone) {
    input.addEventListener("change", summarise);
    ["dragenter", "dragover"].forEach(function (e) {
      zone.addEventListener(e, function (ev) { ev.preventDefault(); zone.classList.add("over"); });
    });
    ["dragleave", "drop"].forEach(function (e) {
      zone.addEventListener(e, function (ev) { ev.preventDefault(); zone.classList.remove("over"); });
    });
    zone.addEventListener("drop", function (ev) {
      if (ev.dataTransfer && ev.dataTransfer.files.length) { input.files = ev.dataTransfer.files; summarise(); }
    });
  }

  // Upload with progress; the server answers with a redirect to the import page, or the form with errors.
  var box = document.getElementById("upload-progress"), bar = document.getElementById("upload-bar");
  var text = document.getElementById("upload-text"), button = document.getElementById("import-submit");
  var tooLarge = document.getElementById("upload-too-large");
  function refuse() {  // over the server's limit: said before sending when the script can tell
    tooLarge.textContent = msg("too-large"); tooLarge.hidden = false;
    box.hidden = true; button.disabled = false;
    tooLarge.scrollIntoView({ block: "nearest" });
  }
  form.addEventListener("submit", function (ev) {
    var max = parseInt(form.getAttribute("data-max-bytes"), 10), bytes = 0;
    form.querySelectorAll(".mode-panel:not([hidden]) input[type=file]").forEach(function (f) {
      for (var i = 0; i < f.files.length; i++) bytes += f.files[i].size;
    });
    tooLarge.hidden = true;
    if (max && bytes > max) { ev.preventDefault(); refuse(); return; }
    if (!window.XMLHttpRequest || !window.FormData) return;  // plain submit
    ev.preventDefault();
    var data = new FormData(form);
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action || window.location.href);
    box.hidden = false; button.disabled = true;
    text.textContent = msg("uploading");
    xhr.upload.addEventListener("progress", function (e) {
      if (!e.lengthComputable) return;
      var pct = Math.round(100 * e.loaded / e.total);
      bar.style.width = pct + "%";
      text.textContent = msg("uploading") + " " + pct + "% (" + (e.loaded / 1048576).toFixed(1) + " / " + (e.total / 1048576).toFixed(1) + " MB)";
    });
    xhr.upload.addEventListener("load", function () { bar.style.width = "100%"; text.textContent = msg("processing"); });
    xhr.addEventListener("load", function () {
      if (xhr.status === 413) { refuse(); return; }
      if (xhr.responseURL && xhr.responseURL.split("#")[0] !== (form.action || window.location.href).split("#")[0]) {
        window.location.assign(xhr.responseURL);  // followed the redirect to the import page
        return;
      }
      document.open(); document.write(xhr.responseText); document.close();  // the form with its errors
    });
    xhr.addEventListener("error", function () { text.textContent = msg("failed"); button.disabled = false; });
    xhr.send(data);
  });
})();
