"""The console's Upload page: pick or drop a model file; static/upload.js sends it to the JSON API.

The page itself only renders the form. The browser uses the direct-upload flow (``POST /api/v1/uploads``,
PUT the bytes to the URL or part URLs it gives, ``POST .../complete``) with the session cookie and the
``X-CSRF-Token`` header, shows the bytes sent, then the validation steps (polling the version while it
validates), and the result. Maintainers and
admins upload; viewers get a 403 page (a role guard).
"""

from __future__ import annotations

from typing import Any

from litestar import get
from litestar.params import FromQuery
from litestar.response import Template

from flashml.console.guards import SignedIn, needs_role
from flashml.console.pages import ConsoleController, console_dependencies, render
from flashml.errors import FlashMLError
from flashml.registry.service import RegistryService
from flashml.settings import Settings
from flashml.web.deps import Injected

ACCEPT = ".onnx,.tar.gz,.tgz,.zip"
# The validation steps in the order they run (registry/bundle.py and RegistryService name them), each with the
# label the page shows; the optional ones run only for some models: task for a task model (flashml.toml's
# task), autotune when the model's batching is tuned. The page lists those only once they run.
STEPS = [("extract", "Unpack the upload", False), ("manifest", "Read the manifest", False),
         ("check", "Check the ONNX graph", False), ("warmup", "Warm up in a sandbox", False),
         ("task", "Check the task's pre- and post-processing", True), ("publish", "Publish the files", False),
         ("load", "Load for serving", False), ("autotune", "Measure batch sizes", True)]
# What to do about each refusal, in plain words; {domain} is filled from the error's details when known.
HINTS: dict[str, str] = {
    "custom_op_domain": "This model uses custom operators from {domain}, which FlashML never loads. Export it with "
                        "standard ONNX operators only (for example torch.onnx.export without custom symbolic "
                        "functions), then upload it again.",
    "not_onnx": "The file is not an ONNX model. Upload the .onnx file itself, or a .tar.gz, .tgz or .zip bundle "
                "that contains one.",
    "corrupt_onnx": "The ONNX file is damaged or incomplete. Export it again and check that the copy finished "
                    "before uploading.",
    "missing_model": "The bundle has no model file FlashML can find. Put the .onnx file in the bundle, or name it "
                     "in the bundle's manifest.",
    "missing_external_data": "The model keeps its weights in separate files that are not in the upload. Bundle the "
                             ".onnx file and its weight files together in one .tar.gz or .zip.",
    "unsafe_external_data": "The model points at weight files outside its own folder. Keep the weight files next "
                            "to the .onnx file, with plain relative names.",
    "unsafe_path": "The bundle contains a path that leaves its own folder (an absolute path or ..). Rebuild the "
                   "archive from inside the model's folder so every name is a plain relative path.",
    "link_in_bundle": "The bundle contains a link. Replace links with the real files and build the archive again.",
    "special_file": "The bundle contains something that is not a regular file or folder. Keep only regular files.",
    "duplicate_member": "The bundle contains the same name twice. Rebuild it so every file appears once.",
    "too_many_members": "The bundle has too many files. Keep only the model, its weights and its manifest.",
    "bundle_too_large": "The bundle unpacks to more than the server allows. Remove files the model does not need.",
    "compression_ratio": "The archive unpacks to far more than its own size, as an archive bomb would. Upload the "
                         "files without extreme compression, or the .onnx file on its own.",
    "bad_archive": "The archive could not be read. Build it again as a .tar.gz, .tgz or .zip.",
    "bad_manifest": "The bundle's manifest is not valid. Fix the field the message names and upload again.",
    "reserved_name": "The bundle uses a file name FlashML keeps for itself. Rename that file.",
    "empty_upload": "The file is empty. Choose the model file again.",
    "validation_timeout": "Loading and running the model once took longer than the server allows. Try a smaller "
                          "model, or ask an admin to raise validation_timeout_s.",
    "validation_memory": "Loading the model needed more memory than the server allows. Try a smaller model, or ask "
                         "an admin to raise validation_memory_bytes.",
    "validation_crashed": "onnxruntime crashed while loading the model. Check that it runs with onnxruntime on "
                          "your machine, then export it again.",
    "session_failed": "onnxruntime could not create a session for this model. Check that it loads with "
                      "onnxruntime.InferenceSession on your machine (opset and operator versions).",
    "upload_too_large": "The file is larger than the server accepts. Upload a smaller model, or ask an admin to "
                        "raise max_upload_bytes.",
    "bad_model_name": "Use 1 to 128 letters, digits or . _ - for the model name, starting with a letter or digit.",
    "role_forbidden": "Your role cannot upload models. Ask an admin for the maintainer role.",
    "csrf_failed": "The page's security token is out of date. Reload the page and try again.",
    "session_expired": "Your console session has ended. Sign in again, then upload.",
    "bad_size": "The file is empty. Choose the model file again.",
    "storage_unavailable": "The model storage cannot be reached right now. Models already serving are not affected; "
                           "try the upload again in a few minutes, or ask an admin to check the storage.",
    "storage_refused": "The storage refused the file. The upload link may have expired: start the upload again.",
    "checksum_mismatch": "The file changed or was damaged on the way. Upload it again.",
    "size_mismatch": "The bytes that arrived do not match the file's size. Upload it again.",
    "upload_expired": "The upload took longer than the server allows. Start it again, or ask an admin to raise "
                      "upload_session_ttl_s.",
    "upload_incomplete": "Not all of the file arrived. Upload it again.",
    "version_validating": "Another version of this model is still validating. Wait for it to finish, then retry.",
}


class UploadPageController(ConsoleController):
    dependencies = console_dependencies("registry", "settings")

    @get("/upload", guards=[needs_role("maintainer")])
    async def upload_page(self, user: SignedIn, registry: Injected[RegistryService], settings: Injected[Settings],
                          model: FromQuery[str] = "") -> Template:
        try:
            names = [m.name for m in await registry.list_models()]
        except FlashMLError:
            names = []
        config: dict[str, Any] = {"hints": HINTS, "steps": [{"step": s, "label": label, "optional": optional}
                                                            for s, label, optional in STEPS],
                                  "max_bytes": settings.max_upload_bytes}
        return render("upload.html", user, active="upload", model=model, names=names, accept=ACCEPT, config=config)
