"""Console pages for models: a searchable list, and one model's versions, serving config and performance.

They call the same RegistryService as the JSON API. Everyone signed in reads; maintainers and admins change
(archive, restore, delete, serving config: a role guard). The console's guards check the session's CSRF token
on every POST.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any
from urllib.parse import quote

from litestar import Request, get, post
from litestar.di import Provide
from litestar.params import FromPath, FromQuery
from litestar.plugins.htmx import HTMXRequest, HTMXTemplate
from litestar.response import Redirect, Template
from msgspec import UnsetType

from flashml.auth.sign_ins import SessionUser
from flashml.console import model_confirm as ask
from flashml.console.drift_tab import drift_tab
from flashml.console.guards import SignedIn, needs_role
from flashml.console.model_confirm import confirmed
from flashml.console.model_page import ModelPage, provide_model_page
from flashml.console.pages import NO_STORE, ConsoleController, console_dependencies, render
from flashml.console.predictions_tab import log_form_change, predictions_tab
from flashml.errors import FlashMLError
from flashml.monitoring.drift_service import DriftService
from flashml.monitoring.prediction_log_settings import PredictionLogSettings
from flashml.records import parse_body
from flashml.registry.aliases import SERVED, AliasService, parse_guard_text, parse_shadow_text, parse_target_text
from flashml.registry.records import ResponseCacheView
from flashml.registry.requests import AliasUpdate, ConfigChange, ModelChange, PinChange
from flashml.registry.response_cache import ResponseCacheService
from flashml.registry.service import RegistryService
from flashml.runtime.batching.config import INT_FIELDS, parse_batch_sizes
from flashml.web.deps import Injected
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
        "unpin": "Unpinned: this version may unload to make room.",
        "prediction_log": "Prediction log setting saved.",
        "drift": "Drift monitoring saved.",
        "drift_check": "Drift checked: the scores below include this round.",
        "drift_off": "Not checked: drift monitoring is off for this model. Switch it on below first."}
MANAGE = [needs_role("maintainer")]  # every change on these pages
# The tab a change lands on (its ?done= notice is shown there): the section the change was made from.
DONE_TAB = {"config": "settings", "cache": "settings", "pin": "settings", "unpin": "settings",
            "archive": "versions", "restore": "versions", "delete": "versions",
            "serve": "traffic", "alias": "traffic", "alias_delete": "traffic", "rollback": "traffic",
            "prediction_log": "predictions", "drift": "drift", "drift_check": "drift", "drift_off": "drift"}


def filter_models(models: list[dict[str, Any]], q: str) -> list[dict[str, Any]]:
    needle = q.strip().lower()
    return [m for m in models if needle in m["name"].lower()] if needle else models


async def _configure(caches: ResponseCacheService, model: str, change: dict[str, Any], *,
                     actor: str) -> ResponseCacheView:
    """The cache form's change, checked by the same rules as the API's PATCH (a bad value: the page's error)."""
    return await caches.configure(model, parse_body({"response_cache": change}, ModelChange), actor=actor)


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


def _done(name: str, done: str) -> Redirect:
    """Back to the model's page, which says what was done."""
    return Redirect(f"/models/{quote(name, safe='')}?done={done}", status_code=303)


class ModelsPageController(ConsoleController):
    dependencies = {**console_dependencies("registry", "aliases", "response_caches", "shadow", "reports",
                                                         "settings", "prediction_log_settings", "drift"),
                    "page": Provide(provide_model_page, sync_to_thread=False)}

    @get("/models")
    async def models_page(self, request: HTMXRequest, user: SignedIn, registry: Injected[RegistryService],
                          q: FromQuery[str] = "") -> Template:
        models = filter_models([m.to_dict() for m in await registry.list_models()], q)
        if request.htmx:  # the search box: only the table's rows
            return HTMXTemplate(template_name="_models_rows.html", context={"models": models, "q": q},
                                headers=NO_STORE)
        return render("models.html", user, active="models", models=models, q=q)

    @get("/models/{name:str}")
    async def model_page(self, request: Request, user: SignedIn, page: Injected[ModelPage], name: FromPath[str],
                         prediction_log_settings: Injected[PredictionLogSettings], drift: Injected[DriftService],
                         done: FromQuery[str] = "", tab: FromQuery[str] = "",
                         compare: FromQuery[list[str] | None] = None) -> Template:
        """One section of the model's page (?tab=); after a change, the section it was made from."""
        tab = tab or DONE_TAB.get(done, "")
        predictions = await predictions_tab(prediction_log_settings, name) if tab == "predictions" else None
        return await page.render(request, user, name, notice=DONE.get(done), tab=tab, compare=compare,
                                 predictions=predictions,
                                 drift=await drift_tab(drift, name) if tab == "drift" else None)

    @staticmethod
    async def _change(request: Request, user: SessionUser, page: ModelPage, name: str, done: str,
                      change: Awaitable[Any], *, failed: str = "") -> Template | Redirect:
        """Make one change from the model page: back to it with ``?done=``, or its section again with the error."""
        try:
            await change
        except FlashMLError as exc:
            return await page.render(request, user, name, error=f"{failed}{exc.message}",
                                     status_code=exc.status, tab=DONE_TAB[done])
        return _done(name, done)

    @post("/models/{name:str}/versions/{version:int}/config", status_code=303, guards=MANAGE)
    async def save_config(self, request: Request, user: SignedIn, page: Injected[ModelPage],
                          registry: Injected[RegistryService], name: FromPath[str],
                          version: RowId) -> Template | Redirect:
        form = await request.form()
        values = {f: str(form.get(f) or "") for f in CONFIG_FIELDS}
        try:
            changes, values = parse_config_form(form)
            await registry.patch_config(name, version, parse_body(changes, ConfigChange), actor=f"{user.name}/console")
        except ValueError as exc:
            return await page.render(request, user, name, error=f"Not saved: {exc}", form_values=values,
                                     status_code=400, tab="settings")
        except FlashMLError as exc:
            return await page.render(request, user, name, error=f"Not saved: {exc.message}",
                                     form_values=values, status_code=exc.status, tab="settings")
        return _done(name, "config")

    @post("/models/{name:str}/versions/{version:int}/archive", status_code=303, guards=MANAGE)
    async def archive(self, request: Request, user: SignedIn, page: Injected[ModelPage],
                      registry: Injected[RegistryService], name: FromPath[str], version: RowId) -> Template | Redirect:
        if not confirmed(await request.form()):
            return await page.confirm(user, name, lambda info: ask.archive(info, version))
        return await self._change(request, user, page, name, "archive",
                                  registry.set_archived(name, version, True, actor=f"{user.name}/console"))

    @post("/models/{name:str}/versions/{version:int}/restore", status_code=303, guards=MANAGE)
    async def restore(self, request: Request, user: SignedIn, page: Injected[ModelPage],
                      registry: Injected[RegistryService], name: FromPath[str], version: RowId) -> Template | Redirect:
        return await self._change(request, user, page, name, "restore",
                                  registry.set_archived(name, version, False, actor=f"{user.name}/console"))

    @post("/models/{name:str}/versions/{version:int}/delete", status_code=303, guards=MANAGE)
    async def delete(self, request: Request, user: SignedIn, page: Injected[ModelPage],
                     registry: Injected[RegistryService], name: FromPath[str], version: RowId) -> Template | Redirect:
        form = await request.form()
        force = form.get("force") == "on"
        if not confirmed(form):
            return await page.confirm(user, name, lambda info: ask.delete_version(info, version, force))
        return await self._change(request, user, page, name, "delete",
                                  registry.delete_version(name, version, force=force, actor=f"{user.name}/console"))

    @post("/models/{name:str}/aliases", status_code=303, guards=MANAGE)
    async def set_alias(self, request: Request, user: SignedIn, page: Injected[ModelPage],
                        aliases: Injected[AliasService], name: FromPath[str]) -> Template | Redirect:
        """Point an alias at a version; "Serve this version" is this form with alias production."""
        form = await request.form()
        values = {f: str(form.get(f) or "").strip() for f in ("alias", "target", "guard", "shadow")}
        try:
            body = parse_target_text(values["target"])
            if values["guard"]:
                body["guard"] = parse_guard_text(values["guard"])
            if values["shadow"]:
                body["shadow"] = parse_shadow_text(values["shadow"])
            update = parse_body(body, AliasUpdate)
            if values["alias"] == SERVED and not confirmed(form):  # what calls without a version get: ask first
                return await page.confirm(user, name, lambda info: ask.move_production(info, values, body))
            await aliases.set_alias(name, values["alias"], update, actor=f"{user.name}/console")
        except FlashMLError as exc:
            return await page.render(request, user, name, error=f"Alias not saved: {exc.message}",
                                     alias_form=values, status_code=exc.status, tab="traffic")
        return _done(name, "serve" if values["alias"] == SERVED and "version" in body else "alias")

    @post("/models/{name:str}/aliases/{alias:str}/delete", status_code=303, guards=MANAGE)
    async def delete_alias(self, request: Request, user: SignedIn, page: Injected[ModelPage],
                           aliases: Injected[AliasService], name: FromPath[str],
                           alias: FromPath[str]) -> Template | Redirect:
        if not confirmed(await request.form()):
            return await page.confirm(user, name, lambda info: ask.delete_alias(info, alias))
        return await self._change(request, user, page, name, "alias_delete",
                                  aliases.delete_alias(name, alias, actor=f"{user.name}/console"))

    @post("/models/{name:str}/versions/{version:int}/pin", status_code=303, guards=MANAGE)
    async def pin(self, request: Request, user: SignedIn, page: Injected[ModelPage],
                  registry: Injected[RegistryService], name: FromPath[str], version: RowId) -> Template | Redirect:
        pinned = (await request.form()).get("pinned") == "on"
        return await self._change(request, user, page, name, "pin" if pinned else "unpin",
                                  registry.set_pinned(name, version, PinChange(pinned=pinned),
                                                      actor=f"{user.name}/console"))

    @post("/models/{name:str}/response-cache", status_code=303, guards=MANAGE)
    async def set_response_cache(self, request: Request, user: SignedIn, page: Injected[ModelPage],
                                 response_caches: Injected[ResponseCacheService],
                                 name: FromPath[str]) -> Template | Redirect:
        form = await request.form()
        entries = str(form.get("max_entries") or "").strip()
        change: dict[str, Any] = {"enabled": form.get("enabled") == "on"}
        if entries:
            change["max_entries"] = int(entries) if entries.isdigit() else entries
        return await self._change(request, user, page, name, "cache",
                                  _configure(response_caches, name, change, actor=f"{user.name}/console"),
                                  failed="Not saved: ")

    @post("/models/{name:str}/prediction-log", status_code=303, guards=MANAGE)
    async def set_prediction_log(self, request: Request, user: SignedIn, page: Injected[ModelPage],
                                 prediction_log_settings: Injected[PredictionLogSettings],
                                 name: FromPath[str]) -> Template | Redirect:
        """The Predictions tab's form, checked by the same rules as the API's PATCH with "prediction_log"."""
        change, values = log_form_change(await request.form())
        try:
            body = parse_body({"prediction_log": change}, ModelChange).prediction_log
            assert not isinstance(body, UnsetType)  # the form always sends one
            config = prediction_log_settings.check(body, name)
            await prediction_log_settings.configure(name, config, actor=f"{user.name}/console")
        except FlashMLError as exc:
            return await page.render(request, user, name, error=f"Not saved: {exc.message}", status_code=exc.status,
                                     tab="predictions",
                                     predictions=await predictions_tab(prediction_log_settings, name, values))
        return _done(name, "prediction_log")

    @post("/models/{name:str}/aliases/{alias:str}/rollback", status_code=303, guards=MANAGE)
    async def rollback_alias(self, request: Request, user: SignedIn, page: Injected[ModelPage],
                             aliases: Injected[AliasService], name: FromPath[str],
                             alias: FromPath[str]) -> Template | Redirect:
        """The alias goes back to its previous target (the same service call as the API's), once confirmed."""
        if not confirmed(await request.form()):
            return await page.confirm(user, name, lambda info: ask.rollback(info, alias))
        return await self._change(request, user, page, name, "rollback",
                                  aliases.rollback(name, alias, actor=f"{user.name}/console"),
                                  failed="Not rolled back: ")
