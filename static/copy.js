// Copy buttons: <button data-copy="ID" data-copy-status="STATUS_ID"> copies the text of #ID and says so in
// #STATUS_ID (default #copy-status). Without the clipboard API (plain http on the LAN) it selects the text.
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
    var status = document.getElementById(button.getAttribute("data-copy-status") || "copy-status");
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
})();
