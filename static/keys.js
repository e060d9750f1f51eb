// The API keys page: show htmx errors (4xx) in the page's alert (copying the new secret: copy.js).
(function () {
  "use strict";

  // The server answers a failed htmx form with the alert and HX-Retarget; htmx does not swap 4xx by default.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var xhr = event.detail.xhr;
    if (xhr && xhr.status >= 400 && xhr.getResponseHeader("HX-Retarget")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  // After a row changed: clear an old alert, and put keyboard focus on the row's message (its button may be gone).
  document.addEventListener("htmx:afterSwap", function (event) {
    var xhr = event.detail.xhr;
    if (!xhr || xhr.status >= 400) return;
    var alert = document.getElementById("keys-alert");
    if (alert) alert.textContent = "";
    var match = /^\/keys\/(\d+)\//.exec((event.detail.requestConfig || {}).path || "");
    var row = match && document.getElementById("key-" + match[1]);
    var note = row && row.querySelector(".notice[tabindex]");
    if (note) note.focus();
  });
})();
