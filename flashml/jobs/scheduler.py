"""The one APScheduler (3.x, ``AsyncIOScheduler``) of the process: job schedules and housekeeping.

Its job store is memory: SQLite is the record (``job_schedules``), and every schedule is added again at
start-up, so schedules survive restarts without a second database.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from flashml.errors import BadRequestError

log = logging.getLogger("flashml.scheduler")
MIN_INTERVAL_S = 1.0
FIRST_RUN_AFTER_S = 2.0  # housekeeping's first round: once start-up is over, not racing it


def make_trigger(cron: str | None, interval_s: float | None, timezone: str = "UTC", *,
                 start: float | None = None) -> BaseTrigger:
    """A cron (five fields, crontab style) or interval trigger in a time zone; a 400 saying what is wrong. An
    interval counts from ``start`` (UNIX time) when given: nodes that plan it at different moments fire together."""
    try:
        tz = ZoneInfo(timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise BadRequestError(f"{timezone!r} is not a time zone: use an IANA name such as UTC or Europe/Paris.",
                              code="bad_timezone") from None
    if (cron is None) == (interval_s is None):
        raise BadRequestError("A schedule has either cron (e.g. \"0 2 * * *\") or interval_s (seconds), not both.",
                              code="bad_schedule")
    if cron is not None:
        if not isinstance(cron, str) or len(cron.split()) != 5:
            raise BadRequestError(f"{cron!r} is not a cron expression of five fields (minute hour day month "
                                  "day-of-week).", code="bad_cron")
        try:
            minute, hour, day, month, dow = cron.split()
            return CronTrigger(minute=minute, hour=hour, day=day, month=month, day_of_week=crontab_weekdays(dow),
                               timezone=tz)
        except ValueError as exc:
            raise BadRequestError(f"{cron!r} is not a valid cron expression: {exc}.", code="bad_cron") from None
    if isinstance(interval_s, bool) or not isinstance(interval_s, int | float) or interval_s < MIN_INTERVAL_S:
        raise BadRequestError(f"interval_s is a number of seconds, at least {MIN_INTERVAL_S:g}.", code="bad_interval")
    first = datetime.fromtimestamp(start, UTC) if start is not None else None
    return IntervalTrigger(seconds=float(interval_s), start_date=first, timezone=tz)


DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def crontab_weekdays(field: str) -> str:
    """Crontab's day-of-week numbers (0 or 7 Sunday) as names: APScheduler 3 counts 0 as Monday."""
    out = []
    for item in field.split(","):
        if any(c.isalpha() for c in item) or item in ("*", "?"):
            out.append(item)
            continue
        span, _, step_text = item.partition("/")
        step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else 1
        if step_text and not step_text.isdigit():
            raise ValueError(f"bad step in {item!r}")
        if span == "*":
            lo, hi = 0, 6
        else:
            lo_text, _, hi_text = span.partition("-")
            lo = int(lo_text)
            hi = int(hi_text) if hi_text else (lo if not step_text else 6)
        if not (0 <= lo <= 7 and 0 <= hi <= 7 and lo <= hi):
            raise ValueError(f"day of week {item!r} is outside 0-7")
        out.extend(DAYS[d % 7] for d in range(lo, hi + 1, step))
    return ",".join(dict.fromkeys(out))


class Scheduler:
    def __init__(self) -> None:
        self.aps = AsyncIOScheduler(timezone="UTC")

    def start(self) -> None:
        self.aps.start()

    def shutdown(self) -> None:
        if self.aps.running:
            self.aps.shutdown(wait=False)

    def add(self, job_id: str, trigger: BaseTrigger, func: Callable[..., Awaitable[None]], *args: object,
            now: bool = False) -> None:
        """Run ``func(*args)`` on the trigger (and once soon after start-up with ``now``)."""
        # One instance at a time; a run missed while the server was down fires once at start, not many times.
        first = {"next_run_time": datetime.now(UTC) + timedelta(seconds=FIRST_RUN_AFTER_S)} if now else {}
        self.aps.add_job(func, trigger, args=list(args), id=job_id, replace_existing=True, max_instances=1,
                         coalesce=True, misfire_grace_time=None, **first)

    def remove(self, job_id: str) -> None:
        if self.aps.get_job(job_id) is not None:
            self.aps.remove_job(job_id)

    def ids(self, prefix: str) -> list[str]:
        """The planned jobs whose id starts with ``prefix``."""
        return [job.id for job in self.aps.get_jobs() if job.id.startswith(prefix)]

    def next_run(self, job_id: str) -> datetime | None:
        job = self.aps.get_job(job_id)
        return job.next_run_time if job is not None else None
