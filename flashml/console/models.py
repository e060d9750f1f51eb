"""Console pages for models: a searchable list, and one model's versions, serving config and performance.

They call the same RegistryService as the JSON API. Everyone signed in reads; maintainers and admins change
(archive, restore, delete, serving config). Every POST checks the session's CSRF token first.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable
from typing import Any
from urllib.parse import quote

from litestar import Controller, Request, get, post
from litestar.response import Redirect, Template

from flashml.auth.csrf import CSRF_FIELD, CSRF_HEADER, require_csrf
from flashml.auth.principal import require_role
from flashml.auth.sign_ins import SessionUser, SignInService
from flashml.composition import Services
from flashml.console.examples import example_shape as _example_shape
from flashml.console.examples import v2_example
from flashml.console.pages import current_user, render, to_login
from flashml.console.tasks import predict_curl, task_view
from flashml.errors import FlashMLError
from flashml.registry.aliases import SERVED, parse_guard_text, parse_shadow_text, parse_target_text
from flashml.runtime.batching.config import INT_FIELDS, parse_batch_sizes
from flashml.web.params import RowId

CONFIG_FIELDS = (*INT_FIELDS[:2], "preferred_batch_sizes", *INT_FIELDS[2:], "device")
DONE = {"config": "Serving config saved; it applies now, without a restart.",
        "archive": "Version archived: it no longer answers requests.",
        "restore": "Version restored: it answers requests again.",
        "delete": "Version deleted.",
        "serve": "Served version changed: calls without a version go to it now.",
        "alias": "Alias saved: calls that name it go to its version now.",
        "alias_delete": "Alias deleted.",
        "rollback": "Alias rolled back: calls that name it go to its previous target now.",
        "cache": "Response cache setting saved.",
        "pin": "Pinned: this version stays loaded.",
        "unpin": "Unpinned: this version may unload to make room."}
_NUMPY = {"BOOL": "np.bool_", "FP16": "np.float16", "FP32": "np.float32", "FP64": "np.float64",
          "BF16": "np.float32", "BYTES": "np.object_"}


def when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts)) if ts else "an unknown date"


def size(n: int | None) -> str:
    if n is None:
        return "unknown"
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} bytes"


def shape(dims: list[int]) -> str:
    return "[" + ", ".join("any" if d < 0 else str(d) for d in dims) + "]"


def filter_models(models: list[dict[str, Any]], q: str) -> list[dict[str, Any]]:
    needle = q.strip().lower()
    return [m for m in models if needle in m["name"].lower()] if needle else models


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
        shape = _example_shape(spec["shape"])
        dtype = _NUMPY.get(spec["datatype"], f"np.{spec['datatype'].lower()}")
        fill = '"text"' if spec["datatype"] == "BYTES" else "1"
        lines += [f'tensor = httpclient.InferInput("{spec["name"]}", {shape}, "{spec["datatype"]}")',
                  f"tensor.set_data_from_numpy(np.full({shape}, {fill}, dtype={dtype}))",
                  "inputs.append(tensor)"]
    lines.append(f'result = client.infer("{model}", inputs, headers=headers)')
    for spec in (signature or {}).get("outputs", []):
        lines.append(f'print(result.as_numpy("{spec["name"]}"))')
    return "\n".join(lines)


def _config_form_values(config: dict[str, Any] | None) -> dict[str, str]:
    config = config or {}
    out = {f: "" if config.get(f) is None else str(config.get(f)) for f in INT_FIELDS}
    out["preferred_batch_sizes"] = ", ".join(str(s) for s in config.get("preferred_batch_sizes") or [])
    out["device"] = config.get("device") or ""
    return out


def parse_config_form(form: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """(changes for patch_config, the submitted values); ValueError says in plain words what is wrong."""
    values = {f: str(form.get(f) or "").strip() for f in CONFIG_FIELDS}
    changes: dict[str, Any] = {}
    for name in INT_FIELDS:
        text = values[name]
        if text == "":
            continue
        if not text.isdigit():
            raise ValueError(f"{name} must be a whole number of 0 or more, not {text!r}.")
        changes[name] = int(text)
    changes["preferred_batch_sizes"] = parse_batch_sizes(values["preferred_batch_sizes"])
    changes["device"] = values["device"] or None
    return changes, values


def _newest_ready(info: dict[str, Any]) -> dict[str, Any] | None:
    ready = [v for v in info["versions"] if v["state"] == "ready"]
    return max(ready, key=lambda v: v["version"]) if ready else None


class ModelsPageController(Controller):
    include_in_schema = False

    @get("/models")
    async def models_page(self, request: Request, sessions: SignInService, services: Services,
                          q: str = "") -> Template | Redirect:
        user = await current_user(request, sessions)
        if user is None:
            return to_login(request)
        models = filter_models([m.to_dict() for m in await services.registry.list_models()], q)
        if request.headers.get("HX-Request") == "true":
            return Template("_models_rows.html", context={"models": models, "q": q},
                            headers={"Cache-Control": "no-store"})
        return render("models.html", user, active="models", models=models, q=q)

    @get("/models/{name:str}")
    async def model_page(self, request: Request, sessions: SignInService, services: Services, name: str,
                         done: str = "") -> Template | Redirect:
        user = await current_user(request, sessions)
        if user is None:
            return to_login(request)
        return await self._model(request, user, services, name, notice=DONE.get(done))

    async def _model(self, request: Request, user: SessionUser, services: Services, name: str, *,
                     notice: str | None = None, error: str | None = None, form_values: dict[str, str] | None = None,
                     alias_form: dict[str, str] | None = None, status_code: int = 200) -> Template:
        try:
            info = (await services.registry.get_model(name)).to_dict()  # the page renders plain values
        except FlashMLError as exc:
            return render("model.html", user, active="models", model=None, name=name, error=exc.message,
                          notice=None, status_code=exc.status)
        newest = _newest_ready(info)
        # The address people call: public_url when set (behind a proxy), else the one this page was asked on.
        base_url = services.settings.public_url.rstrip("/") or str(request.base_url).rstrip("/")
        signature = newest["signature"] if newest else None
        served = next((a for a in info["aliases"] if a["alias"] == SERVED), None)
        aliases = services.registry.aliases
        shadows = [services.shadow.report(name, a["alias"], aliases.route(name, a["alias"]).shadow)
                   for a in info["aliases"] if a["shadow"] and services.shadow and aliases.route(name, a["alias"])]
        task = task_view(newest)
        return render(
            "model.html", user, active="models", model=info, name=name, newest=newest, notice=notice, error=error,
            served=served, alias_form=alias_form or {"alias": "", "target": ""}, shadows=shadows,
            can_manage=user.principal().can("manage_models"),
            form=form_values or _config_form_values(newest["config"] if newest else None),
            perf=(newest or {}).get("performance"),
            curl=(predict_curl(base_url, name, task["kind"]) if task else curl_snippet(base_url, name, signature))
            if newest else "",
            python=python_snippet(base_url, name, signature) if newest else "",
            task=task,
            when=when, size=size, shape=shape,
            status_code=status_code)

    async def _checked(self, request: Request, sessions: SignInService, name: str) -> SessionUser | Redirect:
        """The signed-in maintainer or admin who sent the session's CSRF token; else a redirect or 403."""
        user = await current_user(request, sessions)
        if user is None:  # back to the model's page after signing in: the POST address has no page
            return Redirect(f"/login?next={quote('/models/' + quote(name, safe=''), safe='')}")
        form = await request.form()
        given = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD)
        require_csrf(user.csrf_token, given if isinstance(given, str) else None)
        require_role(user.principal(), "maintainer")
        return user

    async def _change(self, request: Request, user: SessionUser, services: Services, name: str, done: str,
                      change: Awaitable[Any], *, failed: str = "") -> Template | Redirect:
        """Make one change from the model page: back to it with ``?done=``, or the page again with the error."""
        try:
            await change
        except FlashMLError as exc:
            return await self._model(request, user, services, name, error=f"{failed}{exc.message}",
                                     status_code=exc.status)
        return Redirect(f"/models/{quote(name, safe='')}?done={done}", status_code=303)

    @post("/models/{name:str}/versions/{version:int}/config", status_code=303)
    async def save_config(self, request: Request, sessions: SignInService, services: Services, name: str,
                          version: RowId) -> Template | Redirect:
        user = await self._checked(request, sessions, name)
        if isinstance(user, Redirect):
            return user
        form = await request.form()
        values = {f: str(form.get(f) or "") for f in CONFIG_FIELDS}
        try:
            changes, values = parse_config_form(form)
            await services.registry.patch_config(name, version, changes, actor=f"{user.name}/console")
        except ValueError as exc:
            return await self._model(request, user, services, name, error=f"Not saved: {exc}", form_values=values,
                                     status_code=400)
        except FlashMLError as exc:
            return await self._model(request, user, services, name, error=f"Not saved: {exc.message}",
                                     form_values=values, status_code=exc.status)
        return Redirect(f"/models/{quote(name, safe='')}?done=config", status_code=303)

    async def _lifecycle(self, request: Request, sessions: SignInService, services: Services, name: str,
                         version: RowId, action: str) -> Template | Redirect:
        user = await self._checked(request, sessions, name)
        if isinstance(user, Redirect):
            return user
        actor = f"{user.name}/console"
        try:
            if action == "delete":
                force = (await request.form()).get("force") == "on"
                await services.registry.delete_version(name, version, force=force, actor=actor)
            else:
                await services.registry.set_archived(name, version, action == "archive", actor=actor)
        except FlashMLError as exc:
            return await self._model(request, user, services, name, error=exc.message, status_code=exc.status)
        return Redirect(f"/models/{quote(name, safe='')}?done={action}", status_code=303)

    @post("/models/{name:str}/versions/{version:int}/archive", status_code=303)
    async def archive(self, request: Request, sessions: SignInService, services: Services, name: str,
                      version: RowId) -> Template | Redirect:
        return await self._lifecycle(request, sessions, services, name, version, "archive")

    @post("/models/{name:str}/versions/{version:int}/restore", status_code=303)
    async def restore(self, request: Request, sessions: SignInService, services: Services, name: str,
                      version: RowId) -> Template | Redirect:
        return await self._lifecycle(request, sessions, services, name, version, "restore")

    @post("/models/{name:str}/versions/{version:int}/delete", status_code=303)
    async def delete(self, request: Request, sessions: SignInService, services: Services, name: str,
                     version: RowId) -> Template | Redirect:
        return await self._lifecycle(request, sessions, services, name, version, "delete")

    @post("/models/{name:str}/aliases", status_code=303)
    async def set_alias(self, request: Request, sessions: SignInService, services: Services,
                        name: str) -> Template | Redirect:
        """Point an alias at a version; "Serve this version" is this form with alias production."""
        user = await self._checked(request, sessions, name)
        if isinstance(user, Redirect):
            return user
        form = await request.form()
        values = {f: str(form.get(f) or "").strip() for f in ("alias", "target", "guard", "shadow")}
        try:
            body = parse_target_text(values["target"])
            if values["guard"]:
                body["guard"] = parse_guard_text(values["guard"])
            if values["shadow"]:
                body["shadow"] = parse_shadow_text(values["shadow"])
            await services.registry.aliases.set_alias(name, values["alias"], body, actor=f"{user.name}/console")
        except FlashMLError as exc:
            return await self._model(request, user, services, name, error=f"Alias not saved: {exc.message}",
                                     alias_form=values, status_code=exc.status)
        done = "serve" if values["alias"] == SERVED and "version" in body else "alias"
        return Redirect(f"/models/{quote(name, safe='')}?done={done}", status_code=303)

    @post("/models/{name:str}/aliases/{alias:str}/delete", status_code=303)
    async def delete_alias(self, request: Request, sessions: SignInService, services: Services, name: str,
                           alias: str) -> Template | Redirect:
        user = await self._checked(request, sessions, name)
        if isinstance(user, Redirect):
            return user
        return await self._change(request, user, services, name, "alias_delete",
                                  services.registry.aliases.delete_alias(name, alias, actor=f"{user.name}/console"))

    @post("/models/{name:str}/versions/{version:int}/pin", status_code=303)
    async def pin(self, request: Request, sessions: SignInService, services: Services, name: str,
                  version: RowId) -> Template | Redirect:
        user = await self._checked(request, sessions, name)
        if isinstance(user, Redirect):
            return user
        pinned = (await request.form()).get("pinned") == "on"
        return await self._change(request, user, services, name, "pin" if pinned else "unpin",
                                  services.registry.set_pinned(name, version, {"pinned": pinned},
                                                               actor=f"{user.name}/console"))

    @post("/models/{name:str}/response-cache", status_code=303)
    async def set_response_cache(self, request: Request, sessions: SignInService, services: Services,
                                 name: str) -> Template | Redirect:
        user = await self._checked(request, sessions, name)
        if isinstance(user, Redirect):
            return user
        form = await request.form()
        entries = str(form.get("max_entries") or "").strip()
        change: dict = {"enabled": form.get("enabled") == "on"}
        if entries:
            change["max_entries"] = int(entries) if entries.isdigit() else entries
        return await self._change(request, user, services, name, "cache",
                                  services.registry.response_caches.configure(name, {"response_cache": change},
                                                                              actor=f"{user.name}/console"),
                                  failed="Not saved: ")

    @post("/models/{name:str}/aliases/{alias:str}/rollback", status_code=303)
    async def rollback_alias(self, request: Request, sessions: SignInService, services: Services, name: str,
                             alias: str) -> Template | Redirect:
        """One click: the alias goes back to its previous target (the same service call as the API's)."""
        user = await self._checked(request, sessions, name)
        if isinstance(user, Redirect):
            return user
        return await self._change(request, user, services, name, "rollback",
                                  services.registry.aliases.rollback(name, alias, actor=f"{user.name}/console"),
                                  failed="Not rolled back: ")
