"""One model's console page, in tabs: an overview (what serves, its traffic, the performance card), the versions
(and two side by side), traffic (aliases, canaries, shadows), settings (batching, cache, pinning), predictions
(the prediction log), drift (scores over time and the monitoring settings) and try it.

``ModelPage`` renders it from the services it reads; the page's GET and every change that fails (shown again
with the error) use the same one, which its controller receives as the ``page`` dependency.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from litestar import Request
from litestar.response import Template

from flashml.auth.sign_ins import SessionUser
from flashml.console.examples import example_shape, v2_example
from flashml.console.model_confirm import Confirmation
from flashml.console.pages import render
from flashml.console.tasks import predict_curl, task_view
from flashml.errors import FlashMLError
from flashml.inference.metrics_report import MetricsReportService, MetricsSummary
from flashml.inference.shadow import ShadowService
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


# The page's sections, in the order its users think in; each is its own address (?tab=KEY).
TABS = (("overview", "Overview"), ("versions", "Versions"), ("traffic", "Traffic"), ("settings", "Settings"),
        ("predictions", "Predictions"), ("drift", "Drift"), ("try", "Try it"))
TAB_KEYS = {key for key, _ in TABS}
GLANCE = 5  # versions listed on the overview; the Versions tab has them all


def tab_or_overview(tab: str) -> str:
    return tab if tab in TAB_KEYS else "overview"


def compare_pair(info: dict[str, Any], picked: list[str]) -> tuple[list[int], list[dict[str, Any]]]:
    """(the two version numbers the comparison form shows, the two versions to compare or none).

    ``picked`` is ``?compare=1&compare=2`` or ``?compare=1,2``; without two known versions the form offers the
    two newest and nothing is compared."""
    by_number = {v["version"]: v for v in info["versions"]}
    numbers = [int(n) for text in picked for n in text.split(",") if n.strip().isdigit()]
    newest = sorted(by_number, reverse=True)[:2]
    if len(numbers) == 2 and all(n in by_number for n in numbers):
        return numbers, [by_number[n] for n in numbers]
    return (newest + newest)[:2], []


@dataclass(frozen=True)
class ModelPage:
    registry: RegistryService
    shadow: ShadowService
    reports: MetricsReportService
    settings: Settings

    async def render(self, request: Request, user: SessionUser, name: str, *, notice: str | None = None,
                     error: str | None = None, form_values: dict[str, str] | None = None,
                     alias_form: dict[str, str] | None = None, status_code: int = 200, tab: str = "overview",
                     compare: list[str] | None = None, predictions: dict[str, Any] | None = None,
                     drift: dict[str, Any] | None = None) -> Template:
        """The page at ``tab``; ``predictions`` and ``drift`` are the Predictions and Drift tabs' contexts
        (console/predictions_tab.py, console/drift_tab.py), which the caller that shows that tab reads."""
        tab = tab_or_overview(tab)
        try:
            info = (await self.registry.get_model(name)).to_dict()  # the page renders plain values
        except FlashMLError as exc:
            return render("model.html", user, active="models", model=None, name=name, error=exc.message,
                          notice=None, status_code=exc.status)
        newest = _newest_ready(info)
        # The address people call: public_url when set (behind a proxy), else the one this page was asked on.
        base_url = self.settings.public_url.rstrip("/") or str(request.base_url).rstrip("/")
        signature = newest["signature"] if newest else None
        served = info["serving"]  # the registry's one answer to "which version serves" (inference uses it too)
        aliases = self.registry.aliases
        shadows = [self.shadow.report(name, a["alias"], route.shadow) for a in info["aliases"]
                   if a["shadow"] and (route := aliases.route(name, a["alias"]))]
        task = task_view(newest)
        versions = sorted(info["versions"], key=lambda v: v["version"], reverse=True)
        # The overview's performance card is that of the version that serves calls without a version.
        serving = next((v for v in versions if served and v["version"] == served.get("version")), newest)
        compare_pick, compared = compare_pair(info, compare or [])
        # Only a tab link's htmx request gets the section alone; a form's error page is always the whole page.
        section_only = request.headers.get("hx-request") == "true" and request.headers.get("hx-target") == "model-tab"
        return render(
            "_model_tab.html" if section_only else "model.html", user, active="models", model=info, name=name,
            newest=newest, notice=notice, error=error, tab=tab, tabs=TABS, oob_tabs=section_only,
            served=served, alias_form=alias_form or {"alias": "", "target": ""}, shadows=shadows,
            can_manage=user.principal().can("manage_models"), traffic=await self._traffic(name),
            versions_shown=versions[:GLANCE], versions_hidden=max(0, len(versions) - GLANCE),
            compare_pick=compare_pick, compared=compared,
            form=form_values or config_form_values(newest["config"] if newest else None),
            serving=serving, perf=(serving or {}).get("performance"),
            curl=(predict_curl(base_url, name, task["kind"]) if task else curl_snippet(base_url, name, signature))
            if newest else "",
            python=python_snippet(base_url, name, signature) if newest else "",
            task=task, predictions=predictions, drift=drift, status_code=status_code)

    async def _traffic(self, name: str) -> MetricsSummary | None:
        """The model's last hour, as the dashboard counts it (none when the metrics know nothing of it)."""
        try:
            return (await self.reports.report(name)).summary
        except FlashMLError:
            return None

    async def confirm(self, user: SessionUser, name: str, ask: Callable[[dict[str, Any]], Confirmation]) -> Template:
        """The page that asks before a dangerous change (``ask`` words it from the model); its button posts the
        same change with confirm=yes. A model that is gone: its page's error."""
        try:
            info = (await self.registry.get_model(name)).to_dict()
        except FlashMLError as exc:
            return render("model.html", user, active="models", model=None, name=name, error=exc.message,
                          notice=None, status_code=exc.status)
        return render("model_confirm.html", user, active="models", name=name, confirm=ask(info))


def provide_model_page(registry: Injected[RegistryService], shadow: Injected[ShadowService],
                       reports: Injected[MetricsReportService], settings: Injected[Settings]) -> ModelPage:
    return ModelPage(registry, shadow, reports, settings)
