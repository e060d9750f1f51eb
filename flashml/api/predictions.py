"""``GET /api/v1/models/{model}/predictions``: a model's logged predictions as JSON Lines or Parquet."""

from __future__ import annotations

import asyncio
from typing import Annotated
from urllib.parse import quote

from litestar import Controller, get
from litestar.background_tasks import BackgroundTask
from litestar.params import FromPath, QueryParameter
from litestar.response import File, Stream

from flashml.errors import BadRequestError
from flashml.monitoring.prediction_log import PredictionLog
from flashml.monitoring.prediction_log_export import (
    jsonl_chunks,
    parquet_file,
    require_reader,
    selected_lines,
    stream_in_thread,
)
from flashml.monitoring.prediction_log_settings import PredictionLogSettings
from flashml.web.deps import Authenticated, Injected, provide
from flashml.web.params import MAX_ROW_ID

MEDIA_TYPES = {"jsonl": "application/x-ndjson", "parquet": "application/vnd.apache.parquet"}


def export_name(model: str, version: int | None, fmt: str) -> str:
    return f"{model}{'' if version is None else f'-v{version}'}-predictions.{fmt}"


class PredictionsController(Controller):
    path = "/api/v1/models/{model:str}/predictions"
    tags = ["Models"]
    dependencies = provide("predictions", "prediction_log_settings")

    @get("/", summary="Export a model's logged predictions (JSON Lines or Parquet), oldest first")
    async def export_predictions(
            self, model: FromPath[str], caller: Authenticated, predictions: Injected[PredictionLog],
            prediction_log_settings: Injected[PredictionLogSettings],
            version: Annotated[int | None, QueryParameter(ge=1, le=MAX_ROW_ID, description="one version only")]
            = None,
            since: Annotated[float | None, QueryParameter(description="UNIX seconds: logged at or after")] = None,
            until: Annotated[float | None, QueryParameter(description="UNIX seconds: logged before")] = None,
            format: Annotated[str, QueryParameter(description="jsonl or parquet")] = "jsonl") -> File | Stream:
        """Every version one after another (each oldest first), or only ``version``. JSON Lines are the lines as
        logged; Parquet has ``at``, ``version``, ``request_id``, a list column per tensor (``input.<name>``,
        ``output.<name>``) and ``summary``. An admin, or a key (or console user) of at least the viewer role allowed
        this model."""
        require_reader(caller, model)
        fmt = format
        if fmt not in MEDIA_TYPES:
            raise BadRequestError(f"format is jsonl or parquet, not {fmt!r}.", code="bad_format",
                                  details={"field": "format"})
        await prediction_log_settings.require_model(model)
        name = export_name(model, version, fmt)
        disposition = {"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"}
        if fmt == "jsonl":
            await predictions.flush()
            lines = jsonl_chunks(selected_lines(predictions, model, version, since, until))
            return Stream(stream_in_thread(lines), media_type=MEDIA_TYPES[fmt], headers=disposition)
        path = await parquet_file(predictions, model, version, since, until, predictions.exports)
        return File(path, filename=name, media_type=MEDIA_TYPES[fmt],
                    background=BackgroundTask(asyncio.to_thread, path.unlink, True))
