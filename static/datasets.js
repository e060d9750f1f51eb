// The Batch jobs page: send the chosen dataset file as the raw body of POST /api/v1/datasets, then reload.
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.id !== "dataset-form") return;
    event.preventDefault();
    var file = document.getElementById("dataset-file").files[0];
    var status = document.getElementById("dataset-status");
    var button = document.getElementById("dataset-upload");
    if (!file) return;
    button.disabled = true;
    status.textContent = "Uploading " + file.name + "...";
    fetch("/api/v1/datasets?filename=" + encodeURIComponent(file.name), {
      method: "POST", body: file, credentials: "same-origin",
      headers: {"X-CSRF-Token": form.getAttribute("data-csrf"), "Content-Type": "application/octet-stream"}
    }).then(function (resp) {
      return resp.json().then(function (body) { return {ok: resp.ok, body: body}; });
    }).then(function (answer) {
      if (answer.ok) {
        status.textContent = "Uploaded " + answer.body.name + ": " + answer.body.rows + " rows.";
        window.location.reload();
      } else {
        status.textContent = "Not uploaded: " + answer.body.error;
        status.className = "error";
        button.disabled = false;
      }
    }).catch(function (err) {
      status.textContent = "Not uploaded: " + err;
      status.className = "error";
      button.disabled = false;
    });
  });
})();
