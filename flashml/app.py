"""create_app(settings) -> Litestar: the one module that wires routes, services, errors and start-up."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.openapi import OpenAPIConfig
from litestar.plugins.htmx import HTMXPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig

from flashml import __version__
from flashml.api.aliases import AliasesController
from flashml.api.drift import DriftController
from flashml.api.error_handlers import EXCEPTION_HANDLERS
from flashml.api.jobs import DatasetsController, HousekeepingController, JobsController, SchedulesController
from flashml.api.keys import KeysController, MeController
from flashml.api.metrics import MetricsController
from flashml.api.models import ModelsController
from flashml.api.nodes import NodesController
from flashml.api.openapi_errors import ErrorDocumentPlugin
from flashml.api.predict import PredictController
from flashml.api.predictions import PredictionsController
from flashml.api.prometheus import PrometheusController
from flashml.api.security_headers import security_headers_hook
from flashml.api.uploads import UploadsController
from flashml.api.users import AccountController, UsersController
from flashml.api.v2 import V2HealthController, V2ModelController
from flashml.composition import open_services
from flashml.console import CONTROLLERS as CONSOLE_CONTROLLERS
from flashml.console.filters import register_filters
from flashml.console.setup import SetupController
from flashml.paths import STATIC_DIR, TEMPLATES_DIR
from flashml.server import FlashMLServer
from flashml.settings import RESOLVED_ENV, Settings, load_settings
from flashml.telemetry.log_format import make_formatter
from flashml.telemetry.log_handler import LoopFlushedStreamHandler
from flashml.web.deps import DEPENDENCIES

log = logging.getLogger("flashml")


def create_app(settings: Settings) -> Litestar:
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        services = await open_services(settings)
        app.state.services = services
        if await services.users.needs_setup():
            token = await services.users.issue_setup_token(settings.setup_token_ttl_s)
            # Printed, not logged: the person starting the server needs to see and click it.
            print(f"\nFlashML has no users yet. Create the first admin (this link works once):\n"
                  f"  {settings.base_url}/setup/?token={token}\n", file=sys.stderr, flush=True)
        log.info("FlashML %s serving on %s, models run on %s", __version__, settings.base_url, services.pool.device)
        try:
            yield
        finally:
            await services.close()

    return Litestar(
        route_handlers=[*CONSOLE_CONTROLLERS, V2HealthController, V2ModelController, ModelsController, KeysController,
                        PredictController, MeController, MetricsController, UploadsController, SetupController,
                        AliasesController, DatasetsController, JobsController, SchedulesController,
                        HousekeepingController, PrometheusController, PredictionsController, DriftController,
                        UsersController, AccountController, NodesController,
                        create_static_files_router(path="/static", directories=[STATIC_DIR],
                                                   include_in_schema=False)],
        dependencies=DEPENDENCIES,
        before_send=[security_headers_hook(settings)],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[lifespan],
        request_max_body_size=settings.max_request_bytes,
        template_config=TemplateConfig(directory=TEMPLATES_DIR, engine=JinjaTemplateEngine,
                                       engine_callback=register_filters),
        plugins=[HTMXPlugin()],  # every request is an HTMXRequest: the console reads htmx's headers through it
        openapi_config=OpenAPIConfig(
            title="FlashML", version=__version__, path="/schema",
            description="Serve ONNX models: KServe V2 inference and the management API.",
            # Only the machine-readable documents: the bundled HTML viewers load scripts from CDNs. The JSON
            # document lists each operation's error answers with our {error, code, details} body.
            render_plugins=[ErrorDocumentPlugin()],
        ),
        debug=False,
        # Logging is configure_logging's alone: Litestar's default would put its own handler and format on the root
        # logger (at INFO, whatever log_level says).
        logging_config=None,
    )


def app_from_env() -> FlashMLServer:
    """Granian's factory target: `flashml serve` passes the resolved settings in the environment."""
    import os

    text = os.environ.get(RESOLVED_ENV)
    settings = Settings.from_json(text) if text else load_settings()
    configure_logging(settings.log_level, settings.log_format)
    return FlashMLServer(create_app(settings), settings.max_request_bytes, settings.body_timeout_s)


# Libraries that log routine work at INFO: APScheduler writes two lines for every housekeeping round, six a
# minute for as long as the server runs; Alembic seven "setup plugin" lines at every start (flashml.db.migrate
# says in one line when it migrated). They speak from WARNING (a job that fails, a run missed) unless the log
# level is debug.
CHATTY_LOGGERS = ("apscheduler", "alembic")


def configure_logging(level: str, log_format: str = "text") -> None:
    """The server process's logging at ``level`` (the ``log_level`` setting), as text or one JSON object per
    line (``log_format``), on standard error. Written on the thread that logs, one write per turn of the event
    loop (``LoopFlushedStreamHandler``): a queue to another thread would cost the loop more (a copy of each record,
    and the GIL handed back and forth) than the write."""
    handler = LoopFlushedStreamHandler()
    handler.setFormatter(make_formatter(log_format))
    logging.basicConfig(level=level.upper(), handlers=[handler])
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if level.lower() == "debug" else logging.WARNING)
