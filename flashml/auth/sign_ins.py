"""Console sign-in: password check, sessions behind an HttpOnly cookie, and a brake on guessing (login_brake).

Sessions are rows in the database, so any node sharing it accepts a session another node made (a cache miss
reads the row). Each node caches a session for CACHE_TTL_S; where sessions end (sign-out, a disabled or deleted
user, a new password, a new role) the node drops them from its cache and writes a USER_SESSIONS change, which
the other nodes apply (``apply_change``) within about a sync interval.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from flashml.auth.csrf import PRE_SESSION_SECRET, PreSessionTokens, new_csrf_token, new_pre_session_key
from flashml.auth.login_brake import LoginBrake, account_key
from flashml.auth.passwords import hash_password_async, verify_password_async
from flashml.auth.principal import USER_ROLES, Principal
from flashml.auth.tokens import hash_token
from flashml.db import audit, changes
from flashml.db import sign_ins as db
from flashml.db import users as users_db
from flashml.db.secrets import shared_secret
from flashml.errors import TooManyRequestsError, UnauthorizedError, UserNotFoundError

SESSION_COOKIE = "flashml_session"
SESSION_LIFETIME_S = 12 * 3600.0  # a session ends after this long unused (sliding expiry)
CACHE_TTL_S = 10.0  # a session ended elsewhere stops working within this time even where no change feed is read
TOUCH_EVERY_S = 60.0  # how often a used session's expiry is pushed forward in the database


def _duration(seconds: float) -> str:
    seconds = max(1, round(seconds))
    if seconds < 90:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    return f"{round(seconds / 60)} minutes"


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


class SignInService:
    """``node`` names this process in the change feed (changes it writes are applied by the other nodes)."""

    def __init__(self, engine: AsyncEngine, *, lifetime_s: float = SESSION_LIFETIME_S,
                 clock: Callable[[], float] = time.time, node: str = "") -> None:
        self.engine = engine
        self.lifetime_s = lifetime_s
        self.clock = clock
        self.node = node
        self._pre_session: PreSessionTokens | None = None
        self.brake = LoginBrake(clock)
        self._cache: dict[str, tuple[SessionUser, float]] = {}  # session id -> (user, valid until)
        self._dummy_hash: str | None = None
        self._last_sweep = 0.0

    async def check_password(self, name: str, password: str, client_ip: str, *,
                             failed_action: str = "user.login_failed") -> dict:
        """The user ``name`` when ``password`` is theirs (and they may sign in), else 401 ``login_failed`` or, while
        the brake holds this address back, 429 ``login_rate_limited``. Every failure counts for the brake and is
        audited as ``failed_action``: a sign-in and a password change are the same guess to an attacker."""
        source = (client_ip or "?")[:64]  # as long as the change feed's address column: the same key on every node
        wait = self.brake.source_wait(source)
        if wait > 0:
            raise TooManyRequestsError(f"Too many failed sign-ins from your address; wait {_duration(wait)} and try "
                                       "again.", retry_after_s=wait, code="login_rate_limited",
                                       details={"scope": "address"})
        user = await users_db.get_user(self.engine, name) if name else None
        wait = self.brake.account_wait(source, name)
        if wait > 0 and user is not None and user.get("unlocked_at"):
            wait = self.brake.account_wait(source, name, since=user["unlocked_at"])  # an admin unlocked it since
        if wait > 0:
            # Refused before the password is checked: the right password must not get through either, or the
            # brake would only slow the search. Other addresses are not held up by this.
            raise TooManyRequestsError(f"Too many failed sign-ins at this account from your address; wait "
                                       f"{_duration(wait)}, or ask an admin to unlock the account.",
                                       retry_after_s=wait, code="login_rate_limited", details={"scope": "account"})
        if user is None:
            # Spend the same time as a real check, so timing does not tell which names exist.
            if self._dummy_hash is None:
                self._dummy_hash = await hash_password_async(secrets.token_urlsafe(16))
            await verify_password_async(self._dummy_hash, password or "")
            ok = False
        else:
            ok = await verify_password_async(user["password_hash"], password or "")
            ok = ok and not user["disabled"] and user["role"] in USER_ROLES
        if user is None or not ok:
            self.brake.fail(source, name)
            await changes.emit(self.engine, changes.SIGN_IN_FAILED, node=self.node, name=account_key(name),
                               address=source)  # the other nodes' brakes count it too
            await audit.record(self.engine, (name or "?")[:64], failed_action, f"user:{(name or '')[:64]}",
                               {"ip": client_ip})
            raise UnauthorizedError("Wrong user name or password.", code="login_failed")
        if self.brake.succeed(source, name):
            await changes.emit(self.engine, changes.SIGN_IN_FORGIVEN, node=self.node, name=account_key(name),
                               address=source)
        return user

    async def start(self) -> None:
        """Read (or make, on the first node) the key of the sign-in and setup forms' tokens, shared by all nodes."""
        self._pre_session = PreSessionTokens(await shared_secret(self.engine, PRE_SESSION_SECRET,
                                                                 new_pre_session_key))

    @property
    def pre_session(self) -> PreSessionTokens:
        """The sign-in and setup forms' CSRF tokens (after ``start``)."""
        if self._pre_session is None:
            raise RuntimeError("SignInService.start() reads the pre-session key first")
        return self._pre_session

    async def login(self, name: str, password: str, client_ip: str) -> tuple[str, SessionUser]:
        """Check the password; the new session's cookie token (shown only now) and user, else 401 or 429."""
        user = await self.check_password(name, password, client_ip)
        token = secrets.token_urlsafe(32)
        now = self.clock()
        session = SessionUser(hash_token(token), user["id"], user["name"], user["role"], new_csrf_token(),
                              now + self.lifetime_s)
        await db.insert_session(self.engine, session_id=session.session_id, user_id=session.user_id,
                                csrf_token=session.csrf_token, now=now, expires_at=session.expires_at)
        await audit.record(self.engine, user["name"], "user.login", f"user:{user['name']}", {"ip": client_ip})
        await self._sweep(now)
        return token, session

    async def end_sessions(self, name: str, *, keep: str | None = None) -> int:
        """End every session of user ``name`` but ``keep`` (a session id), at once on this node and on the others
        when they read the change; how many ended."""
        self.forget_user(name, keep=keep)
        return await db.delete_user_sessions(self.engine, name, keep=keep,
                                             announce=changes.Change(changes.USER_SESSIONS, self.node, name=name))

    async def user_changed(self, name: str) -> None:
        """User ``name`` changed (a new role, deleted): every node reads their sessions again with the next
        request, so the change counts at once here and within a sync interval elsewhere."""
        self.forget_user(name)
        await self._announce(name)

    async def _announce(self, name: str) -> None:
        """A user's row changed (in its own transaction, flashml.auth.users): cached sessions elsewhere go now, and
        CACHE_TTL_S bounds a node that never reads this."""
        await changes.emit(self.engine, changes.USER_SESSIONS, node=self.node, name=name)

    async def apply_sign_in(self, change: dict) -> None:
        """A sign-in another node checked: a failure counts here at the time it happened, a right password forgives
        that address's failures at the account, as on the node that saw it."""
        source, account = change.get("address") or "?", change.get("name") or ""
        if change["kind"] == changes.SIGN_IN_FAILED:
            self.brake.fail(source, account, at=float(change["at"]))
        else:
            self.brake.succeed(source, account)

    def forget_user(self, name: str, *, keep: str | None = None) -> None:
        """Drop user ``name``'s cached sessions (but ``keep``): the next request reads the database again, so a
        changed role or a disabled account counts at once."""
        self._cache = {k: v for k, v in self._cache.items() if v[0].name != name or k == keep}

    async def apply_change(self, change: dict) -> None:
        """A USER_SESSIONS change another node made: drop that user's cached sessions (the rows say the rest)."""
        if change.get("name"):
            self.forget_user(str(change["name"]))

    def locked(self, name: str, unlocked_at: float | None) -> bool:
        """Whether failed sign-ins hold account ``name`` back now (from some address), as this server counts."""
        return self.brake.refused_sources(name, unlocked_at or 0.0) > 0

    async def unlock(self, name: str, *, actor: str) -> int:
        """Clear account ``name``'s failed sign-ins (an admin's unlock), here and in a running server: the stamp
        in the database makes the server ignore the failures before it. How many addresses this server held."""
        now = self.clock()
        if not await users_db.set_unlocked_at(self.engine, name, now):
            raise UserNotFoundError(name)
        held = self.brake.forget_account(name)
        await audit.record(self.engine, actor, "user.unlock", f"user:{name}", {"refused_addresses": held})
        return held

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
        await db.delete_session(self.engine, session.session_id,
                                announce=changes.Change(changes.USER_SESSIONS, self.node, name=session.name))
        await audit.record(self.engine, session.name, "user.logout", f"user:{session.name}")
        return True

    async def _sweep(self, now: float) -> None:
        """Drop expired sessions now and then (at a sign-in, at most hourly)."""
        if now - self._last_sweep < 3600:
            return
        self._last_sweep = now
        await db.delete_expired(self.engine, now)
        self._cache = {k: v for k, v in self._cache.items() if v[0].expires_at > now}
