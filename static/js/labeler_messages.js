// Planners' messages on the labeler's pages: "OK" marks one read through the API
// (POST /api/me/messages/<id>/read/) and removes it, without leaving the page (the labeling
// page keeps what was typed). Without script the form posts to the page route and comes back.
(function () {
  "use strict";
  var box = document.getElementById("labeler-messages");
  if (!box || !window.fetch) return;
  box.addEventListener("submit", function (e) {
    var form = e.target.closest(".labeler-message-form");
    if (!form) return;
    e.preventDefault();
    var card = form.closest(".labeler-message");
    var token = form.querySelector('input[name="csrfmiddlewaretoken"]');
    var button = form.querySelector("button");
    button.disabled = true;
    fetch(form.getAttribute("data-read-url"), {
      method: "POST", credentials: "same-origin",
      headers: {"X-CSRFToken": token ? token.value : "", "Accept": "application/json"},
    }).then(function (r) {
      if (!r.ok) throw new Error(String(r.status));
      card.remove();
      if (!box.querySelector(".labeler-message")) box.remove();
    }).catch(function () {
      form.submit();  // the page route does the same, then comes back here
    });
  });
})();
