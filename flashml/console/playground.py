"""The inference playground: run one V2 request against a model from the console and read the answer.

Every signed-in role may use it, viewers included: running a model changes nothing. The request goes through
the same InferenceService as ``/v2/models/{name}/infer``, with the session's principal, so the tensors are checked
the same way and errors read the same. Two deliberate differences from an API key:

* A console user may run every model, whatever the role: a viewer's principal is given the ``inference`` role
  for this call only (the user's own role still governs everything else).
* No key limits: rate limits and daily quotas belong to API keys, and a session has no key; KeyService.admit
  lets session principals through rather than count every console user under one fake key.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from typing import Any

from litestar import get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath, FromQuery
from litestar.plugins.htmx import HTMXRequest, HTMXTemplate
from litestar.response import Template

from flashml.auth.principal import INFERENCE_ROLES, Principal
from flashml.auth.sign_ins import SessionUser
from flashml.console.examples import v2_example
from flashml.console.guards import SignedIn
from flashml.console.pages import NO_STORE, ConsoleController, console_dependencies, render
from flashml.console.tasks import shown_vector, task_view
from flashml.errors import FlashMLError
from flashml.inference.predict import PredictService
from flashml.inference.service import InferenceService
from flashml.registry.service import RegistryService
from flashml.tasks.requests import PredictItems
from flashml.web.deps import Injected

MAX_VALUES = 200  # values shown per output tensor; the rest are counted, not printed
MAX_BODY_CHARS = 1_000_000  # the editor's text, at most


def playground_principal(user: SessionUser) -> Principal:
    """The session's principal, allowed to run models (a viewer gets the inference role for this call only)."""
    principal = user.principal()
    if principal.role not in INFERENCE_ROLES:
        principal = dataclasses.replace(principal, role="inference")
    return principal


def _nest(values: list[Any], dims: list[int]) -> Any:
    if len(dims) <= 1:
        return values
    step = len(values) // dims[0] if dims[0] else 0
    return [_nest(values[i * step:(i + 1) * step], dims[1:]) for i in range(dims[0])]


def _dump(value: Any, indent: str = "") -> str:
    """JSON with the innermost rows on one line each."""
    if isinstance(value, list) and value and isinstance(value[0], list):
        inner = indent + "  "
        return "[\n" + ",\n".join(inner + _dump(v, inner) for v in value) + "\n" + indent + "]"
    return json.dumps(value)


def format_data(data: Any, dims: list[int], limit: int = MAX_VALUES) -> tuple[str, int]:
    """(the tensor's values pretty-printed, how many were left out). Big tensors show their first ``limit``."""
    if not isinstance(data, list):
        return json.dumps(data), 0
    if len(data) > limit:
        return json.dumps(data[:limit])[:-1] + ", …]", len(data) - limit
    if dims and all(d >= 0 for d in dims) and math.prod(dims) == len(data):
        return _dump(_nest(data, dims)), 0
    return json.dumps(data), 0


def read_outputs(body: bytes, headers: dict[str, str]) -> list[dict[str, Any]]:
    """The answer's outputs, ready for the template."""
    length = headers.get("Inference-Header-Content-Length")
    header = json.loads(body[:int(length)] if length else body)
    outputs = []
    for out in header.get("outputs", []):
        dims = list(out.get("shape") or [])
        size = (out.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            text, hidden = f"(binary data, {size} bytes: ask without binary_data_output to see the values)", 0
        else:
            text, hidden = format_data(out.get("data"), dims)
        outputs.append({"name": out.get("name"), "datatype": out.get("datatype"), "shape": dims, "text": text,
                        "hidden": hidden})
    return outputs


class PlaygroundController(ConsoleController):
    dependencies = console_dependencies("registry", "inference", "predict")

    async def _page(self, user: SessionUser, registry: RegistryService, name: str, version: str | None, *,
                    body: str | None = None, result: dict[str, Any] | None = None,
                    status_code: int = 200) -> Template:
        error = None
        chosen = None
        ready: list[dict[str, Any]] = []
        try:
            info = (await registry.get_model(name)).to_dict()  # the page renders plain values
        except FlashMLError as exc:
            info, error, status_code = None, exc.message, exc.status
        if info is not None:
            ready = sorted((v for v in info["versions"] if v["state"] == "ready"), key=lambda v: v["version"],
                           reverse=True)
            if version not in (None, ""):
                chosen = next((v for v in ready if str(v["version"]) == str(version)), None)
                if chosen is None:
                    error, status_code = f"{name} has no ready version {version}.", 404
            elif ready:  # what serves calls without a version (the registry's resolution), else the newest
                serving = {int(n) for n in (info["serving"] or {}).get("versions", {})}
                chosen = next((v for v in ready if v["version"] in serving), ready[0])
            else:
                error = f"{name} has no ready version yet: there is nothing to try."
        task = task_view(chosen)
        if body is None:
            body = json.dumps(v2_example(chosen["signature"]), indent=2) if chosen and not task else ""
        return render("playground.html", user, active="models", name=name, model=info, ready=ready, chosen=chosen,
                      body=body, task=task, result=result, error=error, status_code=status_code)

    @get("/models/{name:str}/playground")
    async def playground(self, user: SignedIn, registry: Injected[RegistryService], name: FromPath[str],
                         version: FromQuery[str | None] = None) -> Template:
        return await self._page(user, registry, name, version)

    @post("/models/{name:str}/playground", status_code=200)
    async def run(self, request: HTMXRequest, user: SignedIn, registry: Injected[RegistryService],
                  inference: Injected[InferenceService], name: FromPath[str]) -> Template:
        form = await request.form()
        text = str(form.get("body") or "")[:MAX_BODY_CHARS]
        version = str(form.get("version") or "") or None
        result = await self._run(inference, user, name, version, text)
        if request.htmx:
            # Always 200, so htmx swaps the answer in; an error shows as words in the result.
            return HTMXTemplate(template_name="_playground_result.html", context={"result": result},
                                headers=NO_STORE)
        return await self._page(user, registry, name, version, body=text, result=result,
                                status_code=result.get("status", 200))

    async def _run(self, inference: InferenceService, user: SessionUser, name: str, version: str | None,
                   text: str) -> dict[str, Any]:
        """What the result panel shows: the outputs, latency and version, or the error in words with its code."""
        if not text.strip():
            return {"error": "The request is empty: write a V2 request in JSON, e.g. {\"inputs\": [...]}.",
                    "code": "malformed_request", "status": 400}
        # Same service and checks as the V2 endpoint, without the per-key limiter (see the module docstring).
        started = time.perf_counter()
        try:
            body, headers = await inference.infer(playground_principal(user), name, version, text.encode(), None)
        except FlashMLError as exc:
            return {"error": exc.message, "code": exc.code, "status": exc.status}
        latency_ms = (time.perf_counter() - started) * 1000
        return {"outputs": read_outputs(body, headers), "latency_ms": latency_ms,
                "version": headers.get("FlashML-Model-Version", ""), "status": 200}

    @post("/models/{name:str}/playground/predict", status_code=200)
    async def predict(self, request: HTMXRequest, user: SignedIn, predict: Injected[PredictService],
                      name: FromPath[str]) -> Template:
        """A task model's playground: an image file or texts (one per line) through the predict service."""
        form = await request.form()
        version = str(form.get("version") or "") or None
        upload = form.get("image")
        if isinstance(upload, UploadFile):
            items = PredictItems("images", [await upload.read()])
        else:
            lines = str(form.get("texts") or "")[:MAX_BODY_CHARS].splitlines()
            items = PredictItems("texts", [line for line in lines if line.strip()])
        started = time.perf_counter()
        try:
            answer, _ = await predict.predict(playground_principal(user), name, version, items)
            result = {"task": answer["task"], "version": answer["version"], "status": 200,
                      "latency_ms": (time.perf_counter() - started) * 1000,
                      "items": _shown(answer["task"], answer["predictions"], items)}
        except FlashMLError as exc:
            result = {"error": exc.message, "code": exc.code, "status": exc.status}
        # Always 200, so htmx swaps the answer in; an error shows as words in the result.
        return HTMXTemplate(template_name="_playground_task_result.html", context={"result": result},
                            headers=NO_STORE)


def _shown(task: str, predictions: list[Any], items: PredictItems) -> list[dict[str, Any]]:
    """One entry per item for the result panel; detections also go to the canvas as JSON."""
    shown = []
    for i, prediction in enumerate(predictions):
        entry: dict[str, Any] = {"input": items.items[i] if items.kind == "texts" else f"image {i + 1}"}
        if task == "embeddings":
            entry["vector"] = shown_vector(prediction)
        else:
            entry["labels"] = prediction
        if task == "object-detection":
            entry["json"] = json.dumps(prediction)
        shown.append(entry)
    return shown
