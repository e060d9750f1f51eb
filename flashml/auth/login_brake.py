"""The brake on password guessing: it holds back the address that guesses, not the account it guesses at.

Three counts of failed sign-ins in a sliding window, kept in memory:

- per (address, account) pair: after ``PAIR_MAX_FAILURES`` that address is refused for that account until
  the window passes or an admin unlocks the account. The account's owner at another address still signs in,
  so nobody can lock a person out by guessing at their name.
- per address, whatever the account: after ``SOURCE_FREE_FAILURES`` each further failure doubles the wait
  before that address's next try (2 s, 4 s, ... up to ``SOURCE_MAX_DELAY_S``). One address spraying one
  password over many names gets about two guesses a minute (the old fixed limit allowed four), while people
  who mistype a few times wait not at all. A slowdown, not a lock, because one address can front many people
  (an office behind NAT).
- per account, whatever the address: past ``ACCOUNT_SLOW_AFTER`` failures (many addresses guessing one
  account) each address gets one failed try at that account per window instead of five. An address that
  has not failed there, such as the owner's, still signs in; a refusal never depends on the right password.

An admin's unlock (``SignInService.unlock``) stamps the account in the database; failures before the stamp
stop counting, here and in a server that the CLI unlocked from outside. Nodes sharing a database count each
other's failures too: each failure (and each forgiveness) goes through the change feed, and the other nodes add it
at the time it happened (``at``), about a sync interval later.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

WINDOW_S = 300.0
PAIR_MAX_FAILURES = 5  # per address and account in WINDOW_S
SOURCE_FREE_FAILURES = 10  # per address in WINDOW_S before its tries are spaced out
SOURCE_MAX_DELAY_S = 60.0
ACCOUNT_SLOW_AFTER = 20  # per account in WINDOW_S (from any address) before each address gets one try
_MAX_TRACKED = 10_000  # keys kept per count at most: memory stays bounded whatever the traffic


class FailureLog:
    """The newest ``keep`` failure times per key within ``window_s`` seconds, for at most _MAX_TRACKED keys."""

    def __init__(self, keep: int, window_s: float, clock: Callable[[], float]) -> None:
        self.keep = keep
        self.window_s = window_s
        self.clock = clock
        self._times: dict[str, deque[float]] = {}

    def recent(self, key: str, since: float = 0.0) -> list[float]:
        """The failure times of ``key`` still in the window and later than ``since``, oldest first."""
        times = self._times.get(key)
        if times is None:
            return []
        now = self.clock()
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._times[key]
            return []
        return [t for t in times if t > since]

    def fail(self, key: str, at: float | None = None) -> None:
        """Count a failure of ``key`` now, or at ``at`` (one another node saw a moment ago)."""
        if key not in self._times and len(self._times) >= _MAX_TRACKED:
            for old in list(self._times):
                self.recent(old)
            while len(self._times) >= _MAX_TRACKED:  # still full: forget the oldest keys
                del self._times[next(iter(self._times))]
        self.recent(key)
        when = self.clock() if at is None else at
        times = self._times.setdefault(key, deque(maxlen=self.keep))
        if not times or when >= times[-1]:
            times.append(when)
        else:  # older than one already counted: keep the times in order, and the newest ``keep`` of them
            self._times[key] = deque(sorted([*times, when])[-self.keep:], maxlen=self.keep)

    def forget(self, key: str) -> bool:
        """Drop ``key``'s failures; whether it had any."""
        return self._times.pop(key, None) is not None

    def keys(self) -> list[str]:
        return list(self._times)


def account_key(name: str) -> str:
    return (name or "").strip().lower()[:64]


class LoginBrake:
    """Counts failed sign-ins and says how long a try from an address at an account must wait."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.pairs = FailureLog(PAIR_MAX_FAILURES, WINDOW_S, clock)
        self.sources = FailureLog(SOURCE_FREE_FAILURES + 8, WINDOW_S, clock)  # 2**7 s is past the cap
        self.accounts = FailureLog(ACCOUNT_SLOW_AFTER, WINDOW_S, clock)

    @staticmethod
    def _pair(source: str, account: str) -> str:
        return f"{account}\n{source or '?'}"

    def account_wait(self, source: str, name: str, since: float = 0.0) -> float:
        """Seconds until ``source`` may try ``name`` again (the pair lock, stricter while the account is under
        attack from many addresses); failures before ``since`` (an admin's unlock) do not count."""
        account = account_key(name)
        allowed = PAIR_MAX_FAILURES
        if len(self.accounts.recent(account, since)) >= ACCOUNT_SLOW_AFTER:
            allowed = 1
        pair = self.pairs.recent(self._pair(source, account), since)
        if len(pair) < allowed:
            return 0.0
        return max(0.0, pair[-allowed] + WINDOW_S - self.clock())

    def source_wait(self, source: str) -> float:
        """Seconds until ``source`` may try any account again: 0 for its first few failures, then doubling."""
        times = self.sources.recent(source or "?")
        extra = len(times) - SOURCE_FREE_FAILURES
        if extra < 0:
            return 0.0
        delay = min(SOURCE_MAX_DELAY_S, 2.0 ** (extra + 1))
        return max(0.0, times[-1] + delay - self.clock())

    def fail(self, source: str, name: str, at: float | None = None) -> None:
        """A failed sign-in from ``source`` at account ``name``, now or at ``at`` (another node's)."""
        account = account_key(name)
        self.pairs.fail(self._pair(source, account), at)
        self.sources.fail(source or "?", at)
        self.accounts.fail(account, at)

    def succeed(self, source: str, name: str) -> bool:
        """The right password from ``source``: its own guesses at this account are forgiven (not the address's
        count, which an attacker could reset with an account of their own, nor the account's). Whether there were
        any to forgive."""
        return self.pairs.forget(self._pair(source, account_key(name)))

    def forget_account(self, name: str) -> int:
        """Drop every failure record of account ``name`` (an admin's unlock); how many addresses it held."""
        account = account_key(name)
        prefix = f"{account}\n"
        held = [k for k in self.pairs.keys() if k.startswith(prefix)]
        for key in held:
            self.pairs.forget(key)
        self.accounts.forget(account)
        return len(held)

    def refused_sources(self, name: str, since: float = 0.0) -> int:
        """How many addresses are refused for account ``name`` now (for the users page)."""
        account = account_key(name)
        prefix = f"{account}\n"
        return sum(1 for k in self.pairs.keys()
                   if k.startswith(prefix) and self.account_wait(k[len(prefix):], name, since) > 0)

    def failures(self, name: str) -> int:
        """Failed sign-ins at account ``name`` in the window, from any address."""
        return len(self.accounts.recent(account_key(name)))
