"""Password hashing with argon2id (about 150 ms a hash here: fine for sign-ins, never per request).

The async forms run on a small pool of their own: never on the event loop, and never queued behind the
default pool's other work (store calls, file writes), so a sign-in stays quick whatever else is stuck.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()  # argon2id with the library's recommended parameters
HASH_THREADS = 2  # two hashes at once: sign-ins queue briefly rather than take every core
_pool = ThreadPoolExecutor(HASH_THREADS, thread_name_prefix="flashml-argon2")

MIN_PASSWORD_LENGTH = 8


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def hash_password_async(password: str) -> str:
    """``hash_password`` on the hashing threads."""
    return await asyncio.get_running_loop().run_in_executor(_pool, hash_password, password)


async def verify_password_async(password_hash: str, password: str) -> bool:
    """``verify_password`` on the hashing threads."""
    return await asyncio.get_running_loop().run_in_executor(_pool, verify_password, password_hash, password)


def password_problem(password: str) -> str | None:
    """A sentence saying what is wrong with a new password, or None when it is acceptable."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"The password must be at least {MIN_PASSWORD_LENGTH} characters long."
    return None
