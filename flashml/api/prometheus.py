"""GET /metrics: the Prometheus text exposition of this app's registry (``flashml.telemetry.prometheus``).

Who may read it is the setting ``metrics_access``: ``loopback`` (the default) answers anyone on this machine and
asks others for an API key, ``key`` always asks for one, ``open`` answers anyone. The key (``Authorization:
Bearer``) must be a viewer key or stronger, as for ``GET /api/v1/metrics``: the exposition names every model and
key, which an inference key may not list. Behind a proxy listed in ``trusted_proxies`` the client's address is
the one the proxy forwarded, so a proxy on this machine does not make every client local.

It is not in the OpenAPI document: its answer is Prometheus's text format, for scrapers, not a JSON operation.
"""

from __future__ import annotations

import ipaddress

from litestar import Controller, Request, Response, get
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from flashml.auth.keys import KeyService
from flashml.auth.transport import client_address
from flashml.errors import ForbiddenError, UnauthorizedError
from flashml.settings import Settings
from flashml.web.deps import Injected, provide

READER_ROLE = "viewer"


def is_loopback(host: str) -> bool:
    """127.0.0.0/8 and ::1, also written as an IPv4-mapped IPv6 address (``::ffff:127.0.0.1``)."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


async def check_reader(request: Request, settings: Settings, keys: KeyService) -> None:
    """Let the request read /metrics, or raise 401 (no valid key) or 403 (a key below viewer)."""
    mode = settings.metrics_access
    if mode == "open" or (mode == "loopback" and is_loopback(client_address(request, settings.trusted_proxies))):
        return
    setting = f"setting metrics_access is {mode}"
    where = "from another machine " if mode == "loopback" else ""
    authorization = request.headers.get("authorization")
    if not authorization:
        raise UnauthorizedError(f"GET /metrics {where}needs a {READER_ROLE} API key or stronger ({setting}): send "
                                "'Authorization: Bearer <key>'.", code="missing_key")
    try:
        principal = await keys.authenticate(authorization)
    except UnauthorizedError as exc:
        raise UnauthorizedError(f"{exc.message} GET /metrics {where}needs a valid {READER_ROLE} API key or stronger "
                                f"({setting}).", code=exc.code) from None
    if not principal.has_role(READER_ROLE):
        raise ForbiddenError(f"GET /metrics needs a {READER_ROLE} API key or stronger ({setting}); this key has the "
                             f"{principal.role} role.", code="role_forbidden",
                             details={"required_role": READER_ROLE, "role": principal.role})


class PrometheusController(Controller):
    path = "/metrics"
    include_in_schema = False
    dependencies = provide("metrics_registry", "keys", "settings")

    @get("/")
    async def scrape(self, request: Request, metrics_registry: Injected[CollectorRegistry],
                     keys: Injected[KeyService], settings: Injected[Settings]) -> Response[bytes]:
        """Every collector's numbers now; they are read on the event loop, where the counters are written."""
        await check_reader(request, settings, keys)
        # As a header: Litestar would add a second charset to a text/ media type that already names one.
        return Response(generate_latest(metrics_registry), headers={"content-type": CONTENT_TYPE_LATEST})
