"""Logging a background loop's database outage: one warning when its database calls start failing, one line when
they work again, and nothing in between however many rounds fail (a loop that retries every second would otherwise
fill the log)."""

from __future__ import annotations

import logging
import time


class Outage:
    """``what`` names the loop; ``meanwhile`` says what it does while the database is away; ``log`` is the loop's."""

    def __init__(self, what: str, meanwhile: str, log: logging.Logger) -> None:
        self.what = what
        self.log = log
        self.meanwhile = meanwhile
        self.since: float | None = None

    def failed(self, exc: BaseException) -> None:
        if self.since is None:
            self.since = time.time()
            self.log.warning("%s: the database did not answer (%s: %s); %s", self.what, type(exc).__name__, exc,
                        self.meanwhile)

    def worked(self) -> None:
        if self.since is not None:
            self.log.info("%s: the database answers again after %.1f s", self.what, time.time() - self.since)
            self.since = None
