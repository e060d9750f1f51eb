// The API keys page: copy the new secret, and show htmx errors (4xx) in the page's alert.
(function () {
  "use strict";

  function copied(status, text) {
    if (status) status.textContent = text;
  }

  function selectText(el) {
    var range = document.createRange();
    range.selectNodeContents(el);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("button[data-copy]") : null;
    if (!button) return;
    var source = document.getElementById(button.getAttribute("data-copy"));
    var status = document.getElementById("copy-status");
    if (!source) return;
    var text = source.textContent.trim();
    var fallback = function () {
      selectText(source);
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      copied(status, ok ? "Copied." : "Selected: press Ctrl+C (or ⌘C) to copy.");
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { copied(status, "Copied."); }, fallback);
    } else {
      fallback();
    }
  });

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
