"""Console sign-in: password check, sessions behind an HttpOnly cookie, and a brake on guessing."""

from __future__ import annotations

import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from flashml.auth.csrf import new_csrf_token
from flashml.auth.passwords import hash_password_async, verify_password_async
from flashml.auth.principal import USER_ROLES, Principal
from flashml.auth.tokens import hash_token
from flashml.db import audit
from flashml.db import sessions as db
from flashml.db import users as users_db
from flashml.errors import TooManyRequestsError, UnauthorizedError

SESSION_COOKIE = "flashml_session"
SESSION_LIFETIME_S = 12 * 3600.0  # a session ends after this long unused (sliding expiry)
CACHE_TTL_S = 10.0  # a session ended elsewhere (another process) stops working within this time
TOUCH_EVERY_S = 60.0  # how often a used session's expiry is pushed forward in the database
LOGIN_WINDOW_S = 300.0
LOGIN_MAX_FAILURES_PER_NAME = 5  # failed sign-ins per user name in LOGIN_WINDOW_S
LOGIN_MAX_FAILURES_PER_IP = 20  # per client address: higher, as one address can front many people (NAT)
_MAX_TRACKED = 10_000  # failure records kept in memory at most


@dataclass(frozen=True)
class SessionUser:
    """A signed-in console user."""

    session_id: str
    user_id: int
    name: str
    role: str
    csrf_token: str
    expires_at: float

    def principal(self) -> Principal:
        return Principal(0, "", self.name, self.role, None, self.name, via="session", csrf_token=self.csrf_token)


class FailureLimiter:
    """At most ``max_failures`` failures per key in a sliding window of ``window_s`` seconds, in memory."""

    def __init__(self, max_failures: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` may try again; 0 when it may now."""
        now = self.clock()
        times = self._recent(key, now)
        if times is None or len(times) < self.max_failures:
            return 0.0
        return times[-self.max_failures] + self.window_s - now

    def fail(self, key: str) -> None:
        now = self.clock()
        if len(self._failures) >= _MAX_TRACKED:
            for old in list(self._failures):
                self._recent(old, now)
            while len(self._failures) >= _MAX_TRACKED:  # still full: forget the oldest keys
                del self._failures[next(iter(self._failures))]
        times = self._recent(key, now) or self._failures.setdefault(key, deque())
        times.append(now)
        while len(times) > self.max_failures:
            times.popleft()

    def reset(self, key: str) -> None:
        self._failures.pop(key, None)


class SessionService:
    def __init__(self, engine: AsyncEngine, *, lifetime_s: float = SESSION_LIFETIME_S,
                 clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.lifetime_s = lifetime_s
        self.clock = clock
        self.by_name = FailureLimiter(LOGIN_MAX_FAILURES_PER_NAME, LOGIN_WINDOW_S, clock)
        self.by_ip = FailureLimiter(LOGIN_MAX_FAILURES_PER_IP, LOGIN_WINDOW_S, clock)
        self._cache: dict[str, tuple[SessionUser, float]] = {}  # session id -> (user, valid until)
        self._dummy_hash: str | None = None
        self._last_sweep = 0.0

    async def login(self, name: str, password: str, client_ip: str) -> tuple[str, SessionUser]:
        """Check the password; the new session's cookie token (shown only now) and user, else 401 or 429."""
        name_key, ip_key = f"name:{(name or '').strip().lower()[:64]}", f"ip:{client_ip or '?'}"
        wait = max(self.by_name.retry_after(name_key), self.by_ip.retry_after(ip_key))
        if wait > 0:
            raise TooManyRequestsError("Too many failed sign-ins; wait a few minutes and try again.",
                                       retry_after_s=wait, code="login_rate_limited")
        user = await users_db.get_user(self.engine, name) if name else None
        if user is None:
            # Spend the same time as a real check, so timing does not tell which names exist.
            if self._dummy_hash is None:
                self._dummy_hash = await hash_password_async(secrets.token_urlsafe(16))
            await verify_password_async(self._dummy_hash, password or "")
            ok = False
        else:
            ok = await verify_password_async(user["password_hash"], password or "")
            ok = ok and not user["disabled"] and user["role"] in USER_ROLES
        if not ok:
            self.by_name.fail(name_key)
            self.by_ip.fail(ip_key)
            await audit.record(self.engine, (name or "?")[:64], "user.login_failed", f"user:{(name or '')[:64]}",
                               {"ip": client_ip})
            raise UnauthorizedError("Wrong user name or password.", code="login_failed")
        self.by_name.reset(name_key)
        token = secrets.token_urlsafe(32)
        now = self.clock()
        session = SessionUser(hash_token(token), user["id"], user["name"], user["role"], new_csrf_token(),
                              now + self.lifetime_s)
        await db.insert_session(self.engine, session_id=session.session_id, user_id=session.user_id,
                                csrf_token=session.csrf_token, now=now, expires_at=session.expires_at)
        await audit.record(self.engine, user["name"], "user.login", f"user:{user['name']}", {"ip": client_ip})
        await self._sweep(now)
        return token, session

    async def resolve(self, token: str | None) -> SessionUser | None:
        """The signed-in user behind a cookie token, or None (no such session, expired, user disabled)."""
        if not token:
            return None
        digest = hash_token(token)
        now = self.clock()
        hit = self._cache.get(digest)
        if hit is not None and hit[1] > now and hit[0].expires_at > now:
            return hit[0]
        self._cache.pop(digest, None)
        row = await db.get_session(self.engine, digest)
        if row is None:
            return None
        if row["expires_at"] <= now:
            await db.delete_session(self.engine, digest)
            return None
        if row["disabled"] or row["role"] not in USER_ROLES:
            return None
        expires_at = row["expires_at"]
        if now - row["last_seen_at"] >= TOUCH_EVERY_S:
            expires_at = now + self.lifetime_s
            await db.touch_session(self.engine, digest, now=now, expires_at=expires_at)
        session = SessionUser(digest, row["user_id"], row["name"], row["role"], row["csrf_token"], expires_at)
        self._cache[digest] = (session, now + CACHE_TTL_S)
        return session

    async def logout(self, token: str | None) -> bool:
        """End the session behind a cookie token; False when there was none."""
        session = await self.resolve(token)
        if session is None:
            return False
        self._cache.pop(session.session_id, None)
        await db.delete_session(self.engine, session.session_id)
        await audit.record(self.engine, session.name, "user.logout", f"user:{session.name}")
        return True

    async def _sweep(self, now: float) -> None:
        """Drop expired sessions now and then (at a sign-in, at most hourly)."""
        if now - self._last_sweep < 3600:
            return
        self._last_sweep = now
        await db.delete_expired(self.engine, now)
        self._cache = {k: v for k, v in self._cache.items() if v[0].expires_at > now}
