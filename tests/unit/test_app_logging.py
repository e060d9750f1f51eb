"""The server's logging: routine library chatter stays out of the log unless the level is debug."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from flashml.app import CHATTY_LOGGERS, configure_logging
from flashml.jobs.scheduler import Scheduler


@pytest.fixture
def restore_levels():
    saved = {name: logging.getLogger(name).level for name in CHATTY_LOGGERS}
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


def run_two_jobs() -> None:
    """One job that succeeds and one that raises, each run once by the real scheduler."""
    async def fine() -> None:
        pass

    async def broken() -> None:
        raise RuntimeError("disk on fire")

    async def main() -> None:
        scheduler = Scheduler()
        scheduler.start()
        try:
            for func in (fine, broken):
                scheduler.aps.add_job(func, "date", run_date=datetime.now(UTC), id=func.__name__)
            for _ in range(200):
                await asyncio.sleep(0.01)
                if not scheduler.aps.get_jobs():
                    break
            await asyncio.sleep(0.05)  # the executor logs after the job's coroutine has finished
        finally:
            scheduler.shutdown()
    asyncio.run(main())


def test_housekeeping_rounds_do_not_fill_the_log_but_failures_still_show(caplog, restore_levels):
    configure_logging("info")
    caplog.set_level(logging.INFO)
    run_two_jobs()
    scheduler_records = [r for r in caplog.records if r.name.startswith("apscheduler")]
    assert not [r for r in scheduler_records if r.levelno < logging.WARNING], "routine runs were logged"
    failures = [r for r in scheduler_records if r.levelno >= logging.ERROR]
    assert failures and "broken" in failures[0].getMessage()


def test_debug_level_shows_every_run(caplog, restore_levels):
    configure_logging("debug")
    caplog.set_level(logging.DEBUG)
    run_two_jobs()
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("apscheduler")]
    assert any("fine" in m and "executed successfully" in m for m in messages)


def test_json_lines_at_the_set_level_even_after_litestar_starts(tmp_path):
    """In a fresh process, as the server's worker: configure_logging, then the app is built (Litestar used to put
    its own handler and INFO level on the root logger), then lines are logged."""
    script = f"""
import logging
from flashml.app import configure_logging, create_app
from flashml.settings import load_settings
configure_logging("warning", "json")
create_app(load_settings(cli={{"data_dir": {str(tmp_path)!r}, "device": "cpu"}}, env={{}}))
logging.getLogger("flashml.registry").info("routine, below the level")
logging.getLogger("flashml.registry").warning("disk %s full", "nearly")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert [(line["level"], line["logger"], line["message"]) for line in lines] == [
        ("WARNING", "flashml.registry", "disk nearly full")]
