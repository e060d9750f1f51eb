"""The Drift tab's two forms: save the model's drift monitoring (as ``PATCH /api/v1/models/{model}`` with
``{"drift": ...}``, checked by the same rules) and check now (as ``POST .../drift/check``). Both land back on the
tab (``console/drift_tab.py`` renders it); a refused setting shows the page again with the sentence and the values
typed in.
"""

from __future__ import annotations

from urllib.parse import quote

from litestar import Request, post
from litestar.di import Provide
from litestar.params import FromPath
from litestar.response import Redirect, Template
from msgspec import UnsetType

from flashml.console.drift_tab import drift_form_change, drift_tab
from flashml.console.guards import SignedIn, needs_role
from flashml.console.model_page import ModelPage, provide_model_page
from flashml.console.pages import ConsoleController, console_dependencies
from flashml.errors import FlashMLError
from flashml.monitoring.drift_service import DriftService
from flashml.records import parse_body
from flashml.registry.requests import ModelChange
from flashml.web.deps import Injected


def _back(name: str, done: str) -> Redirect:
    return Redirect(f"/models/{quote(name, safe='')}?done={done}", status_code=303)


class DriftPageController(ConsoleController):
    dependencies = {**console_dependencies("registry", "shadow", "reports", "settings", "drift"),
                    "page": Provide(provide_model_page, sync_to_thread=False)}

    @post("/models/{name:str}/drift", status_code=303, guards=[needs_role("maintainer")])
    async def save_drift(self, request: Request, user: SignedIn, page: Injected[ModelPage],
                         drift: Injected[DriftService], name: FromPath[str]) -> Template | Redirect:
        change, values = drift_form_change(await request.form())
        try:
            body = parse_body({"drift": change}, ModelChange).drift  # the API's sentences for each field
            assert not isinstance(body, UnsetType)  # the form always sends one
            config = await drift.check_change(body, name)
            await drift.configure(name, config, actor=f"{user.name}/console")
        except FlashMLError as exc:
            return await page.render(request, user, name, error=f"Not saved: {exc.message}", status_code=exc.status,
                                     tab="drift", drift=await drift_tab(drift, name, values))
        return _back(name, "drift")

    @post("/models/{name:str}/drift/check", status_code=303, guards=[needs_role("maintainer")])
    async def check_drift(self, request: Request, user: SignedIn, page: Injected[ModelPage],
                          drift: Injected[DriftService], name: FromPath[str]) -> Template | Redirect:
        try:
            checked = await drift.check(name)
        except FlashMLError as exc:
            return await page.render(request, user, name, error=f"Not checked: {exc.message}",
                                     status_code=exc.status, tab="drift", drift=await drift_tab(drift, name))
        return _back(name, "drift_check" if checked.enabled else "drift_off")
