// The Upload page: send one model file to the JSON API, show the bytes sent, the validation steps, the result.
//
// The direct-upload flow: POST /api/v1/uploads (name, size, sha256) gives one URL, or one per
// part for big files; the bytes are PUT there (a presigned S3 URL, so they never pass through FlashML, or
// FlashML's own URL on local disk); then POST .../complete checks them, validates and publishes. The JSON
// calls carry the session cookie and the page's CSRF token. XMLHttpRequest (not fetch) because only it
// reports upload progress. Complete answers 201 (ready), 202 + Location (still validating: poll it every
// 500 ms; its "progress" lists the steps so far) or 4xx {"error", "code", "details"}.
(function () {
  "use strict";

  var NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
  var POLL_MS = 500;

  var form = document.getElementById("upload-form");
  if (!form) return;
  var config = JSON.parse(document.getElementById("upload-config").textContent);
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrfToken = (meta && meta.content) || form.getAttribute("data-csrf-token");

  var nameInput = document.getElementById("model-name");
  var nameError = document.getElementById("name-error");
  var fileInput = document.getElementById("model-file");
  var chosen = document.getElementById("file-chosen");
  var dropZone = document.getElementById("drop-zone");
  var button = document.getElementById("upload-button");
  var status = document.getElementById("upload-status");
  var progressTitle = document.getElementById("progress-title");
  var bar = document.getElementById("upload-progress");
  var bytesText = document.getElementById("upload-bytes");
  var stepsTitle = document.getElementById("steps-title");
  var stepsList = document.getElementById("steps");
  var result = document.getElementById("upload-result");

  // ---- small helpers ----

  function formatBytes(n) {
    if (n < 1000) return n + " B";
    var units = ["kB", "MB", "GB", "TB"];
    var value = n;
    var i = -1;
    do { value /= 1000; i += 1; } while (value >= 1000 && i < units.length - 1);
    return value.toFixed(1) + " " + units[i];
  }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    (children || []).forEach(function (child) {
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function modelUrl(name) {
    return "/models/" + encodeURIComponent(name);
  }

  function showFile() {
    var file = fileInput.files && fileInput.files[0];
    chosen.textContent = file ? "Chosen: " + file.name + " (" + formatBytes(file.size) + ")" : "";
  }

  // ---- validation steps: done, current (or failed), still to come ----

  function labelOf(step) {
    for (var i = 0; i < config.steps.length; i++) {
      if (config.steps[i].step === step) return config.steps[i].label;
    }
    // A step the page has no label for yet still reads as words, never as the server's identifier.
    var words = step.replace(/[-_]+/g, " ");
    return "Step: " + words.charAt(0).toUpperCase() + words.slice(1);
  }

  // recorded: the step names the server logged so far, in order; each is logged as it starts.
  // phase: "validating" (the last one runs now), "ready" (all done) or "failed" (the last one failed).
  function showSteps(recorded, phase) {
    stepsTitle.hidden = false;
    stepsList.hidden = false;
    stepsList.textContent = "";
    var names = recorded.slice();
    if (phase === "validating") {
      config.steps.forEach(function (s) {
        if (names.indexOf(s.step) < 0 && !s.optional) names.push(s.step);
      });
    }
    names.forEach(function (step, i) {
      var state = "todo";
      if (i < recorded.length - 1 || (i === recorded.length - 1 && phase === "ready")) state = "done";
      else if (i === recorded.length - 1) state = phase === "failed" ? "failed" : "current";
      var marks = { done: "✓", current: "…", failed: "✗", todo: "○" };
      var words = { done: "done", current: "running now", failed: "failed here", todo: "to come" };
      stepsList.appendChild(el("li", { "class": state, "data-step": step, "data-state": state }, [
        el("span", { "class": "mark", "aria-hidden": "true" }, [marks[state]]),
        labelOf(step) + " ",
        el("span", { "class": "muted" }, ["(" + words[state] + ")"])
      ]));
    });
  }

  function stepNames(list) {
    return (list || []).map(function (s) { return s.step; });
  }

  // ---- outcomes ----

  function finish() {
    button.disabled = false;
    nameInput.disabled = false;
    fileInput.disabled = false;
  }

  function showReady(version) {
    progressTitle.textContent = "Uploaded";
    showSteps(stepNames(version.report && version.report.steps), "ready");
    var seconds = version.report && version.report.seconds;
    result.textContent = "";
    result.appendChild(el("div", { "class": "ok-box", id: "upload-ok", role: "status" }, [
      el("p", {}, ["Version " + version.version + " of " + version.model + " is ready and answers requests" +
                   (seconds !== undefined ? " (checked in " + seconds + " s)." : ".")]),
      el("p", {}, [el("a", { href: modelUrl(version.model), id: "model-link" }, ["Open " + version.model])])
    ]));
    finish();
  }

  function hintFor(code, details) {
    var hint = config.hints[code];
    if (!hint) return "";
    var domain = details && details.domain ? '"' + details.domain + '"' : "another operator domain";
    return hint.replace("{domain}", domain);
  }

  // error: {"error", "code", "details"} of the API, or a version's errors[0] ({"code", "error", ...details}).
  function showError(error, version) {
    var details = (error && error.details) || {};
    if (version && version.errors && version.errors[0]) details = version.errors[0].details || version.errors[0];
    var first = (version && version.errors && version.errors[0]) || {};
    var code = (error && error.code) || first.code || "unknown";
    var message = (error && error.error) || first.error || "The upload failed.";
    if (version && version.report) showSteps(stepNames(version.report.steps), "failed");
    // The file arrived and became a version that failed its checks: say so, rather than that nothing was uploaded.
    var heading = version && version.version ? "Version " + version.version + " failed validation" : "Not uploaded";
    var box = el("div", { "class": "error-box", id: "upload-error", role: "alert", "data-code": code }, [
      el("p", {}, [el("strong", {}, [heading + ": "]), message])
    ]);
    var hint = hintFor(code, details);
    if (hint) box.appendChild(el("p", { id: "upload-hint" }, [el("strong", {}, ["What to do: "]), hint]));
    if (version && version.version) {
      box.appendChild(el("p", { "class": "muted" }, [
        "It does not answer requests; its reasons stay on ",
        el("a", { href: modelUrl(version.model) }, ["the model's page"]), "."
      ]));
    }
    result.textContent = "";
    result.appendChild(box);
    progressTitle.textContent = heading;
    finish();
  }

  function parseJson(text) {
    try { return JSON.parse(text); } catch (e) { return null; }
  }

  // ---- polling a version that still validates ----

  function poll(location) {
    var xhr = new XMLHttpRequest();
    xhr.open("GET", location);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.onload = function () {
      var body = parseJson(xhr.responseText);
      if (xhr.status !== 200 || !body) {
        showError(body || { error: "Checking the upload failed (HTTP " + xhr.status + ")." });
        return;
      }
      if (body.state === "validating") {
        showSteps(stepNames(body.progress), "validating");
        window.setTimeout(function () { poll(location); }, POLL_MS);
      } else if (body.state === "failed") {
        showError(null, body);
      } else {
        showReady(body);
      }
    };
    xhr.onerror = function () { window.setTimeout(function () { poll(location); }, POLL_MS * 4); };
    xhr.send();
  }

  // ---- sending: ask for an upload, PUT the bytes where the server says, then complete ----

  function showSent(loaded, total) {
    bar.max = total || 1;
    bar.value = Math.min(loaded, bar.max);
    bytesText.textContent = formatBytes(loaded) + " of " + formatBytes(total);
  }

  // A JSON call to FlashML with the session cookie and the CSRF token.
  function callApi(method, url, body, onDone) {
    var xhr = new XMLHttpRequest();
    xhr.open(method, url);
    xhr.setRequestHeader("X-CSRF-Token", csrfToken);
    xhr.setRequestHeader("Accept", "application/json");
    if (body !== null) xhr.setRequestHeader("Content-Type", "application/json");
    xhr.onload = function () { onDone(xhr.status, parseJson(xhr.responseText), xhr); };
    xhr.onerror = function () {
      showError({ error: "The upload did not reach the server, or the connection broke.", code: "network" });
    };
    xhr.send(body === null ? null : JSON.stringify(body));
  }

  // The file's SHA-256 (static/sha256.js reads it in slices), so the server can check the bytes end to end.
  function sha256Of(file, onDone) {
    if (!window.flashmlSha256) {
      onDone(null);
      return;
    }
    progressTitle.textContent = "Checking the file";
    window.flashmlSha256(file, function (done) {
      showSent(done, file.size);
      bytesText.textContent = formatBytes(done) + " of " + formatBytes(file.size) + " checked";
    }).then(onDone, function () { onDone(null); });
  }

  // Each piece goes to its own URL: a presigned S3 URL (straight to the store) or FlashML's own; both carry
  // their authorisation, so no key or cookie is needed. Pieces go one after the other; the bar counts them all.
  function sendPieces(up, file, pieces, index, sentBefore, onDone) {
    if (index >= pieces.length) {
      onDone();
      return;
    }
    var piece = pieces[index];
    var xhr = new XMLHttpRequest();
    xhr.open("PUT", piece.url);
    xhr.upload.onprogress = function (event) { showSent(sentBefore + event.loaded, file.size); };
    xhr.onload = function () {
      if (xhr.status >= 200 && xhr.status < 300) {
        showSent(sentBefore + piece.size, file.size);
        sendPieces(up, file, pieces, index + 1, sentBefore + piece.size, onDone);
        return;
      }
      var body = parseJson(xhr.responseText);
      showError(body && body.error ? body : { error: "The storage refused the file (HTTP " + xhr.status + ").",
                                              code: "storage_refused" });
    };
    xhr.onerror = function () {
      showError({ error: "The file could not be sent to " + (up.storage === "s3" ? "the object storage" :
                  "the server") + ", or the connection broke.", code: "network" });
    };
    xhr.send(file.slice(piece.offset, piece.offset + piece.size));
  }

  function onVersion(status, body, xhr, name) {
    bar.value = bar.max;
    if (status === 201 && body) {
      showReady(body);
    } else if (status === 202 && body) {
      progressTitle.textContent = "Sent; validating";
      showSteps(stepNames(body.progress), "validating");
      poll(xhr.getResponseHeader("Location") || "/api/v1/models/" + encodeURIComponent(name) + "/versions/" +
           body.version);
    } else {
      var version = body && body.details && body.details.version;
      showError(body || { error: "The server answered HTTP " + status + "." }, version);
    }
  }

  function send(name, file) {
    sha256Of(file, function (digest) {
      var ask = { model: name, filename: file.name, size: file.size };
      if (digest) ask.sha256 = digest;
      progressTitle.textContent = "Sending";
      showSent(0, file.size);
      callApi("POST", "/api/v1/uploads", ask, function (status, up) {
        if (status !== 201 || !up) {
          showError(up || { error: "The server answered HTTP " + status + "." });
          return;
        }
        var pieces = up.parts || [{ url: up.url, offset: 0, size: file.size }];
        sendPieces(up, file, pieces, 0, 0, function () {
          showSent(file.size, file.size);
          bytesText.textContent += " sent";
          progressTitle.textContent = "Sent; validating";
          showSteps([], "validating");
          callApi("POST", up.complete_url, null, function (code, body, xhr) { onVersion(code, body, xhr, name); });
        });
      });
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var name = nameInput.value.trim();
    var file = fileInput.files && fileInput.files[0];
    nameError.hidden = true;
    if (!NAME.test(name) || name.indexOf("..") >= 0) {
      nameError.textContent = "Model name: " + config.hints.bad_model_name;
      nameError.hidden = false;
      nameInput.focus();
      return;
    }
    if (!file) {
      nameError.textContent = "Choose a model file first.";
      nameError.hidden = false;
      fileInput.focus();
      return;
    }
    if (config.max_bytes && file.size > config.max_bytes) {
      status.hidden = false;
      result.textContent = "";
      showError({ error: "The file is " + formatBytes(file.size) + "; the server accepts at most " +
                  formatBytes(config.max_bytes) + ".", code: "upload_too_large" });
      return;
    }
    button.disabled = true;
    nameInput.disabled = true;
    fileInput.disabled = true;
    status.hidden = false;
    result.textContent = "";
    stepsList.hidden = true;
    stepsTitle.hidden = true;
    progressTitle.textContent = "Sending";
    bar.max = file.size || 1;
    bar.value = 0;
    bytesText.textContent = "0 B of " + formatBytes(file.size);
    send(name, file);
  });

  // ---- choosing a file: the picker, or drag and drop onto the zone ----

  fileInput.addEventListener("change", showFile);

  ["dragenter", "dragover"].forEach(function (type) {
    dropZone.addEventListener(type, function (event) {
      event.preventDefault();
      dropZone.classList.add("over");
    });
  });
  ["dragleave", "drop"].forEach(function (type) {
    dropZone.addEventListener(type, function () { dropZone.classList.remove("over"); });
  });
  dropZone.addEventListener("drop", function (event) {
    event.preventDefault();
    var files = event.dataTransfer && event.dataTransfer.files;
    if (!files || !files.length || fileInput.disabled) return;
    fileInput.files = files;
    showFile();
  });
  // A file dropped beside the zone must not replace the page with the file.
  ["dragover", "drop"].forEach(function (type) {
    document.addEventListener(type, function (event) {
      if (!dropZone.contains(event.target)) event.preventDefault();
    });
  });

  showFile();
})();
