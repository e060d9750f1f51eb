"""One model's console page: its versions, aliases, serving config, performance and the snippets that call it.

``ModelPage`` renders it from the services it reads; the page's GET and every change that fails (shown again
with the error) use the same one, which its controller receives as the ``page`` dependency.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from litestar import Request
from litestar.response import Template

from flashml.auth.sign_ins import SessionUser
from flashml.console.examples import example_shape, v2_example
from flashml.console.pages import render
from flashml.console.tasks import predict_curl, task_view
from flashml.errors import FlashMLError
from flashml.inference.shadow import ShadowService
from flashml.registry.aliases import SERVED
from flashml.registry.service import RegistryService
from flashml.runtime.batching.config import INT_FIELDS
from flashml.settings import Settings
from flashml.web.deps import Injected

_NUMPY = {"BOOL": "np.bool_", "FP16": "np.float16", "FP32": "np.float32", "FP64": "np.float64",
          "BF16": "np.float32", "BYTES": "np.object_"}


def curl_snippet(base_url: str, model: str, signature: dict[str, Any] | None) -> str:
    body = json.dumps(v2_example(signature))
    return (f'curl -sS -X POST -H "Authorization: Bearer $FLASHML_KEY" -H "Content-Type: application/json" \\\n'
            f"  -d '{body}' \\\n  {base_url}/v2/models/{quote(model, safe='')}/infer")


def python_snippet(base_url: str, model: str, signature: dict[str, Any] | None) -> str:
    scheme, _, host = base_url.partition("://")
    tls = ", ssl=True" if scheme == "https" else ""
    lines = ["import os", "", "import numpy as np", "import tritonclient.http as httpclient", "",
             f'client = httpclient.InferenceServerClient(url="{host}"{tls})',
             'headers = {"Authorization": f"Bearer {os.environ[\'FLASHML_KEY\']}"}', "inputs = []"]
    for spec in (signature or {}).get("inputs", []):
        shape = example_shape(spec["shape"])
        dtype = _NUMPY.get(spec["datatype"], f"np.{spec['datatype'].lower()}")
        fill = '"text"' if spec["datatype"] == "BYTES" else "1"
        lines += [f'tensor = httpclient.InferInput("{spec["name"]}", {shape}, "{spec["datatype"]}")',
                  f"tensor.set_data_from_numpy(np.full({shape}, {fill}, dtype={dtype}))",
                  "inputs.append(tensor)"]
    lines.append(f'result = client.infer("{model}", inputs, headers=headers)')
    for spec in (signature or {}).get("outputs", []):
        lines.append(f'print(result.as_numpy("{spec["name"]}"))')
    return "\n".join(lines)


def config_form_values(config: dict[str, Any] | None) -> dict[str, str]:
    """The serving config form's fields, filled from a version's config."""
    config = config or {}
    out = {f: "" if config.get(f) is None else str(config.get(f)) for f in INT_FIELDS}
    out["preferred_batch_sizes"] = ", ".join(str(s) for s in config.get("preferred_batch_sizes") or [])
    out["device"] = config.get("device") or ""
    return out


def _newest_ready(info: dict[str, Any]) -> dict[str, Any] | None:
    ready = [v for v in info["versions"] if v["state"] == "ready"]
    return max(ready, key=lambda v: v["version"]) if ready else None


@dataclass(frozen=True)
class ModelPage:
    registry: RegistryService
    shadow: ShadowService
    settings: Settings

    async def render(self, request: Request, user: SessionUser, name: str, *, notice: str | None = None,
                     error: str | None = None, form_values: dict[str, str] | None = None,
                     alias_form: dict[str, str] | None = None, status_code: int = 200) -> Template:
        try:
            info = (await self.registry.get_model(name)).to_dict()  # the page renders plain values
        except FlashMLError as exc:
            return render("model.html", user, active="models", model=None, name=name, error=exc.message,
                          notice=None, status_code=exc.status)
        newest = _newest_ready(info)
        # The address people call: public_url when set (behind a proxy), else the one this page was asked on.
        base_url = self.settings.public_url.rstrip("/") or str(request.base_url).rstrip("/")
        signature = newest["signature"] if newest else None
        served = next((a for a in info["aliases"] if a["alias"] == SERVED), None)
        aliases = self.registry.aliases
        shadows = [self.shadow.report(name, a["alias"], route.shadow) for a in info["aliases"]
                   if a["shadow"] and (route := aliases.route(name, a["alias"]))]
        task = task_view(newest)
        return render(
            "model.html", user, active="models", model=info, name=name, newest=newest, notice=notice, error=error,
            served=served, alias_form=alias_form or {"alias": "", "target": ""}, shadows=shadows,
            can_manage=user.principal().can("manage_models"),
            form=form_values or config_form_values(newest["config"] if newest else None),
            perf=(newest or {}).get("performance"),
            curl=(predict_curl(base_url, name, task["kind"]) if task else curl_snippet(base_url, name, signature))
            if newest else "",
            python=python_snippet(base_url, name, signature) if newest else "",
            task=task, status_code=status_code)


def provide_model_page(registry: Injected[RegistryService], shadow: Injected[ShadowService],
                       settings: Injected[Settings]) -> ModelPage:
    return ModelPage(registry, shadow, settings)
