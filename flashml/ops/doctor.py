"""`flashml doctor`: check a node the way `flashml serve` would use it, and say in words what is wrong.

Each check gives one row: ``ok``, ``warn`` (works, but look at it) or ``fail`` (something FlashML needs does not
work). The command's exit status is 0 when every row is ok, 1 when there are warnings only, 2 when one failed.
The checks live beside this module: the Python side and ONNX Runtime's providers (``doctor_runtime``), the data
directory, store and database (``doctor_data``, ``doctor_database``), and the network side (``doctor_network``).
Nothing here changes the node: no folder is made, no file tightened, no table added; a probe file written to see
whether the data directory is writable is removed at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import msgspec

from flashml.settings import GiB, Settings

Status = Literal["ok", "warn", "fail"]
EXIT_CODES: dict[Status, int] = {"ok": 0, "warn": 1, "fail": 2}
DEFAULT_MIN_FREE = 1 * GiB


class Check(msgspec.Struct, frozen=True):
    """One row of the report: what was checked, how it went, and a sentence a person can act on."""

    name: str
    status: Status
    message: str


class Report(msgspec.Struct, frozen=True):
    """Every row, the worst status among them and the exit status it gives (what ``--json`` prints)."""

    status: Status
    exit_code: int
    checks: list[Check]


@dataclass(frozen=True)
class DoctorOptions:
    min_free_bytes: int = DEFAULT_MIN_FREE  # less free disk than this under the data directory is a warning
    server_timeout_s: float = 3.0  # how long the running server has to answer


def ok(name: str, message: str) -> Check:
    return Check(name, "ok", message)


def warn(name: str, message: str) -> Check:
    return Check(name, "warn", message)


def fail(name: str, message: str) -> Check:
    return Check(name, "fail", message)


def worst(checks: list[Check]) -> Status:
    return max((c.status for c in checks), key=EXIT_CODES.__getitem__, default="ok")


def report(checks: list[Check]) -> Report:
    status = worst(checks)
    return Report(status, EXIT_CODES[status], checks)


def run_checks(settings: Settings, options: DoctorOptions = DoctorOptions()) -> Report:
    """Every check, in the order the report lists them."""
    from flashml.ops import doctor_data, doctor_database, doctor_network, doctor_runtime

    groups: list[Callable[[], list[Check]]] = [
        doctor_runtime.python_checks,
        lambda: doctor_runtime.provider_checks(settings),
        lambda: [doctor_runtime.gpu_check(settings)],
        lambda: doctor_data.data_dir_checks(settings, options.min_free_bytes),
        lambda: [doctor_data.store_check(settings)],
        lambda: doctor_database.settings_database_checks(settings),
        lambda: doctor_network.network_checks(settings, options.server_timeout_s),
    ]
    checks: list[Check] = []
    with _quiet_logs():
        for run in groups:
            checks += run()
    return report(checks)


def settings_report(error: Exception) -> Report:
    """When the settings themselves do not load, that is the one thing to fix: the other checks need them."""
    from flashml.ops.doctor_runtime import python_checks

    return report([*python_checks(), fail("settings", f"{error}: flashml serve would refuse to start with these "
                                                      "settings. Fix it, then run the doctor again.")])


@contextmanager
def _quiet_logs() -> Iterator[None]:
    """The layers below log what goes wrong for a server's log (a store call that failed, say); the doctor says the
    same in its own rows, so their lines are kept off the terminal while it runs."""
    logger = logging.getLogger("flashml")
    before = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(before)
