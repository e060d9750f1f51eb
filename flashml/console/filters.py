"""The console's Jinja filters: every time, size, duration and latency a page shows is written by one of these.

They are registered on the template engine in ``flashml.app`` (``register_filters``), so a template writes
``{{ v.created_at | utc("an unknown date") }}`` or ``{{ v.size_bytes | size }}`` and no console module formats
these values itself. Times are always UTC: a server's pages look the same wherever its users are.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from litestar.plugins.jinja import JinjaTemplateEngine

from flashml.registry.aliases import guard_text
from flashml.tasks.config import task_model

SIZE_UNITS = ("bytes", "KiB", "MiB", "GiB")


def utc(timestamp: float | None, missing: str = "", *, date: bool = True, seconds: bool = True) -> str:
    """``2026-12-04 10:22:31 UTC``; ``date=False`` leaves out the day, ``seconds=False`` the seconds.

    ``missing`` is what an absent time reads as ("never", "an unknown date")."""
    if not timestamp:
        return missing
    pattern = ("%Y-%m-%d " if date else "") + ("%H:%M:%S" if seconds else "%H:%M")
    return time.strftime(pattern, time.gmtime(timestamp)) + " UTC"


def size(n: int | None, missing: str = "unknown", *, unit: str | None = None) -> str:
    """``512 bytes``, ``1.5 KiB``, ``12.0 MiB``, ``2.1 GiB``. A fixed ``unit`` keeps a column comparable."""
    if n is None:
        return missing
    if unit is not None:
        return f"{n / 1024 ** SIZE_UNITS.index(unit):.1f} {unit}" if unit != "bytes" else f"{n} bytes"
    value = float(n)
    for name in SIZE_UNITS:
        if value < 1024 or name == SIZE_UNITS[-1]:
            return f"{int(value)} bytes" if name == "bytes" else f"{value:.1f} {name}"
        value /= 1024
    raise AssertionError("unreachable: the last unit always returns")


def duration(seconds: float | None, missing: str = "–") -> str:
    """The two largest units of a span of time: ``45 s``, ``3 min 20 s``, ``2 h 5 min``, ``1 d 4 h``."""
    if seconds is None:
        return missing
    total = max(0, round(seconds))
    minutes, secs = divmod(total, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


def ms(value: float | None, missing: str = "–") -> str:
    """A latency in milliseconds, with the digits that matter: ``0.42 ms``, ``12.3 ms``, ``250 ms``."""
    if value is None:
        return missing
    return f"{value:.2f} ms" if value < 1 else f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"


def percent(rate: float) -> str:
    """A rate from 0 to 1 as ``28.6 %``."""
    return f"{rate * 100:.1f} %"


def shape(dims: list[int]) -> str:
    """A tensor's shape, dynamic dimensions as "any": ``[any, 3, 224, 224]``."""
    return "[" + ", ".join("any" if d < 0 else str(d) for d in dims) + "]"


# guard: a canary guard's thresholds ("error rate above 5% or p99 above 200 ms over 60 s"); task_model: a task
# with its article ("an image classification model"). Their wording lives with the guard and the task.
FILTERS: dict[str, Callable[..., Any]] = {"utc": utc, "size": size, "duration": duration, "ms": ms,
                                          "percent": percent, "shape": shape, "guard": guard_text,
                                          "task_model": task_model}


def register_filters(engine: JinjaTemplateEngine) -> None:
    """TemplateConfig's ``engine_callback``: the filters above, for every template."""
    engine.engine.filters.update(FILTERS)
