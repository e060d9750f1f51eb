"""The first-run page: create the first admin from the one-time link printed at start-up."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from litestar import Controller, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Template

from flashml.errors import FlashMLError
from flashml.services.container import Services


@dataclass
class SetupForm:
    token: str
    name: str
    password: str
    password_again: str


class SetupController(Controller):
    path = "/setup"
    include_in_schema = False

    @get("/")
    async def setup_page(self, services: Services, token: str = "") -> Template:
        valid = await services.users.setup_token_valid(token)
        return Template("setup.html", context={"token": token, "valid": valid, "error": None, "name": ""},
                        status_code=200 if valid else 403)

    @post("/", status_code=200)
    async def complete_setup(
        self, services: Services, data: Annotated[SetupForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template:
        ctx = {"token": data.token, "valid": True, "name": data.name}
        if data.password != data.password_again:
            return Template("setup.html", context={**ctx, "error": "The two passwords differ."}, status_code=400)
        try:
            user = await services.users.complete_setup(data.token, data.name, data.password)
        except FlashMLError as exc:
            valid = exc.code != "setup_link_invalid"
            return Template("setup.html", context={**ctx, "valid": valid, "error": exc.message},
                            status_code=exc.status)
        key = await services.keys.create(name=f"{user['name']} admin key", role="admin", models=None,
                                         actor=user["name"])
        return Template("setup_done.html", context={"user": user, "key": key,
                                                    "base_url": services.settings.base_url})
