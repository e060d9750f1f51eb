"""Direct uploads: the client asks for an upload, sends the bytes straight to the store, then completes it.

1. ``create``: an upload id and a URL to PUT the bytes to: a presigned URL of the S3 store, or FlashML's own
   ``/api/v1/uploads/{id}/data?token=...`` for local disk. Both carry their own authorisation and expire.
2. The client PUTs the bytes there (``receive`` is FlashML's side of that for local disk).
3. ``complete``: the object's size and sha256 are checked against what the client declared, and only then
   is a version number given and the file validated and published as any upload is. An upload that never
   completes never becomes a version; ``housekeeping`` removes expired, abandoned and failed ones.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import re
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from flashml.db import uploads as db
from flashml.errors import BadRequestError, ConflictError, FlashMLError, NotFoundError, PayloadTooLargeError
from flashml.registry.records import UploadPart, UploadRecord, UploadTicket, VersionRecord
from flashml.registry.requests import UploadStart
from flashml.registry.service import RegistryService, check_model_name
from flashml.registry.uploads import receive_upload
from flashml.settings import Settings
from flashml.storage.base import file_sha256
from flashml.storage.scratch import remove_path
from flashml.storage.threads import in_store_thread

log = logging.getLogger("flashml.uploads")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
INCOMING = "incoming/"
MIN_PART = 5 * 1024 * 1024  # S3's smallest part (all but the last)
COMPLETING_S = 3600.0  # a completion still "completing" after this long on a cluster was cut short by its node


class UploadGoneError(FlashMLError):
    status = 410
    code = "upload_expired"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


UPLOAD_FIELDS = ("id", "model", "filename", "size_bytes", "part_bytes", "sha256", "state", "version", "error",
                 "created_at", "expires_at")


def upload_record(row: dict[str, Any]) -> UploadRecord:
    return UploadRecord(**{k: row[k] for k in UPLOAD_FIELDS})


class DirectUploadService:
    def __init__(self, engine: AsyncEngine, registry: RegistryService, settings: Settings) -> None:
        self.engine = engine
        self.registry = registry
        self.store = registry.store
        self.settings = settings

    # ---- the three steps ----

    async def create(self, start: UploadStart, *, actor: str, user: str) -> UploadTicket:
        """Where to send the file ``start`` describes (its fields' types were checked when it was decoded)."""
        model, filename, size, sha256 = start.model, start.filename.strip(), start.size, start.sha256
        check_model_name(model)
        if not filename or len(filename) > 255 or "/" in filename or "\\" in filename:
            raise BadRequestError("filename is the upload's file name (1 to 255 characters, no folders).",
                                  code="bad_filename")
        limit = self.settings.max_upload_bytes
        if size > limit:
            raise PayloadTooLargeError(f"The upload is {size} bytes; the limit is {limit} bytes (setting "
                                       "max_upload_bytes).", code="upload_too_large")
        if sha256 is not None and not SHA256.match(sha256.lower()):
            raise BadRequestError("sha256 is the file's SHA-256 as 64 hexadecimal digits.", code="bad_sha256")
        await self.registry.check_store("this upload")
        upload_id, token = secrets.token_hex(16), secrets.token_urlsafe(32)
        key = INCOMING + upload_id
        ttl = self.settings.upload_session_ttl_s
        own = f"/api/v1/uploads/{upload_id}/data?token={token}"
        part_bytes = max(MIN_PART, self.settings.upload_part_bytes)
        multipart_id, parts, url = None, None, None
        if size > part_bytes:
            multipart_id = await in_store_thread(self.store.start_multipart, key)
            parts = []
            for n, offset in enumerate(range(0, size, part_bytes), 1):
                part_url = self.store.presigned_part_url(key, multipart_id, n, ttl) or f"{own}&part={n}"
                parts.append(UploadPart(part=n, url=part_url, offset=offset, size=min(part_bytes, size - offset)))
        else:
            url = await in_store_thread(self.store.presigned_put_url, key, ttl) or own
        await db.create(self.engine, id=upload_id, token_hash=_hash(token), model=model, filename=filename,
                        size_bytes=size, sha256=sha256.lower() if sha256 else None, user=user[:64], actor=actor,
                        object_key=key, multipart_id=multipart_id, part_bytes=part_bytes if parts else None,
                        expires_at=time.time() + ttl)
        row = await db.get(self.engine, upload_id)
        if row is None:  # created just above; only housekeeping deletes rows, and never a pending one
            raise RuntimeError(f"upload {upload_id} vanished right after it was created")
        return UploadTicket(**{k: row[k] for k in UPLOAD_FIELDS}, url=url, parts=parts, method="PUT",
                            storage=self.store.kind, complete_url=f"/api/v1/uploads/{upload_id}/complete")

    async def receive(self, upload_id: str, token: str, chunks: AsyncIterator[bytes], content_length: int | None,
                      part: int | None = None) -> dict[str, Any]:
        """FlashML's own upload URL (local disk): the bytes of a pending upload (or one part of it)."""
        row = await db.get(self.engine, upload_id)
        if row is None or not hmac.compare_digest(_hash(token or ""), row["token_hash"]):
            raise NotFoundError("There is no such upload, or its token is wrong.", code="upload_not_found")
        self._check_pending(row)
        if self.store.local_path(row["object_key"]) is None:
            raise ConflictError("This server stores uploads in S3: PUT the bytes to the presigned URL it gave.",
                                code="use_presigned_url")
        expected = self._expected_size(row, part)
        if content_length is not None and content_length != expected:
            raise BadRequestError(f"This {'part' if part else 'upload'} should be {expected} bytes; the request has "
                                  f"{content_length}.", code="size_mismatch")
        tmp = self.registry.scratch.new_upload_path()
        try:
            size = await receive_upload(chunks, tmp, expected)
            if size != expected:
                raise BadRequestError(f"{size} bytes arrived; this {'part' if part else 'upload'} should be "
                                      f"{expected}.", code="size_mismatch")
            if part:
                await in_store_thread(self.store.put_part, row["object_key"], row["multipart_id"], part, tmp)
            else:
                await in_store_thread(self.store.put_file, row["object_key"], tmp, move=True)
        except PayloadTooLargeError:
            raise BadRequestError(f"More bytes arrived than the {expected} expected.", code="size_mismatch") from None
        finally:
            tmp.unlink(missing_ok=True)
        return {"id": upload_id, "part": part, "received_bytes": size}

    @staticmethod
    def _expected_size(row: dict[str, Any], part: int | None) -> int:
        size, part_bytes = row["size_bytes"], row["part_bytes"]
        if not part_bytes:
            if part:
                raise BadRequestError("This upload is sent whole, not in parts.", code="bad_part")
            return size
        count = -(-size // part_bytes)
        if not part or not 1 <= part <= count:
            raise BadRequestError(f"This upload is sent in parts 1 to {count}: PUT each to its own URL.",
                                  code="bad_part")
        return min(part_bytes, size - (part - 1) * part_bytes)

    async def complete(self, upload_id: str, *, user: str, is_admin: bool) -> tuple[VersionRecord, bool]:
        """Check the bytes, then validate and publish them as a new version: (version record, finished?)."""
        row = await self._mine(upload_id, user, is_admin)
        self._check_pending(row)
        await self.registry.check_store("completing this upload")
        if not await db.move(self.engine, upload_id, "pending", "completing"):
            raise ConflictError("This upload is already being completed.", code="upload_not_pending")
        tmp = self.registry.scratch.new_upload_path()
        try:
            await self._fetch_and_verify(row, tmp)
        except FlashMLError as exc:
            remove_path(tmp)
            await self._failed(row, exc)
            raise
        except BaseException:
            remove_path(tmp)
            await db.move(self.engine, upload_id, "completing", "pending")  # let the client retry
            raise
        record, done = await self.registry.publish_file(row["model"], tmp, size=row["size_bytes"],
                                                        source_name=row["filename"], actor=row["actor"],
                                                        user=row["user"])
        state = "failed" if record.state == "failed" else "done"
        error = record.errors[0] if state == "failed" and record.errors else None
        await db.move(self.engine, upload_id, "completing", state, version=record.version, error=error)
        return record, done

    async def get(self, upload_id: str, *, user: str, is_admin: bool) -> UploadRecord:
        return upload_record(await self._mine(upload_id, user, is_admin))

    # ---- checks ----

    async def _mine(self, upload_id: str, user: str, is_admin: bool) -> dict[str, Any]:
        row = await db.get(self.engine, upload_id)
        if row is None or not (is_admin or row["user"] == user):
            raise NotFoundError(f"There is no upload {upload_id!r}.", code="upload_not_found")
        return row

    def _check_pending(self, row: dict[str, Any]) -> None:
        if row["state"] == "pending" and row["expires_at"] < time.time():
            raise UploadGoneError("This upload has expired; start a new one (setting upload_session_ttl_s).")
        if row["state"] == "expired":
            raise UploadGoneError("This upload has expired; start a new one (setting upload_session_ttl_s).")
        if row["state"] != "pending":
            raise ConflictError(f"This upload is {row['state']}; start a new one to send another file.",
                                code="upload_not_pending", details={"upload": upload_record(row).to_dict()})

    async def _fetch_and_verify(self, row: dict[str, Any], tmp: Path) -> None:
        key = row["object_key"]
        if row["multipart_id"]:
            count = -(-row["size_bytes"] // row["part_bytes"])
            try:
                await in_store_thread(self.store.complete_multipart, key, row["multipart_id"], count)
            except ValueError as exc:
                raise ConflictError(f"Not every part has arrived ({exc}): PUT each part to its URL, then complete "
                                    "the upload.", code="upload_incomplete") from None
            await db.set_values(self.engine, row["id"], multipart_id=None)  # joined: nothing left to abort
        info = await in_store_thread(self.store.stat, key)
        if info is None:
            raise ConflictError("No bytes have arrived for this upload yet: PUT the file to its URL, then complete "
                                "it.", code="upload_incomplete")
        if info.size != row["size_bytes"]:
            raise BadRequestError(f"The store holds {info.size} bytes for this upload; it was declared as "
                                  f"{row['size_bytes']}. Start a new upload.", code="size_mismatch")
        local = self.store.local_path(key)
        if local is not None:
            await asyncio.to_thread(os.rename, local, tmp)  # same disk: no copy
        else:
            await in_store_thread(self.store.get_file, key, tmp)
        digest = await asyncio.to_thread(file_sha256, tmp)
        if row["sha256"] and digest != row["sha256"]:
            raise BadRequestError(f"The bytes received hash to {digest}, not the sha256 {row['sha256']} declared: "
                                  "the file changed or was damaged on the way. Start a new upload.",
                                  code="checksum_mismatch")
        await in_store_thread(self.store.delete, key)

    async def _failed(self, row: dict[str, Any], exc: FlashMLError) -> None:
        if exc.code in ("upload_incomplete", "storage_unavailable"):  # still pending: the client may retry
            await db.move(self.engine, row["id"], "completing", "pending")
            return
        await db.move(self.engine, row["id"], "completing", "failed", error={"code": exc.code, "error": exc.message})
        fresh = await db.get(self.engine, row["id"])  # joining the parts may have cleared multipart_id
        if fresh is not None:  # purged meanwhile: housekeeping deletes the bytes no live upload holds
            await self._drop_bytes(fresh)

    async def _drop_bytes(self, row: dict[str, Any]) -> None:
        """Remove an upload's bytes: the object, and the parts of an unfinished multipart upload."""
        try:
            if row["multipart_id"]:
                await in_store_thread(self.store.abort_multipart, row["object_key"], row["multipart_id"])
            await in_store_thread(self.store.delete, row["object_key"])
        except FlashMLError:
            pass  # housekeeping removes it when the store is back

    # ---- housekeeping ----

    async def housekeeping(self, *, at_start: bool = False) -> int:
        """Remove expired, abandoned and failed uploads and their bytes; returns how many were removed."""
        now = time.time()
        removed = 0
        if at_start:  # a completion the last run did not finish: its version (if any) was marked interrupted
            # Where other nodes share the database, a completion may be theirs and running: only one older than
            # any completion takes (fetching the bytes, then upload_wait_s) is taken for interrupted.
            busy_until = now - COMPLETING_S if await self.registry.other_live_nodes() else now
            for row in await db.in_state(self.engine, "completing"):
                if row["updated_at"] > busy_until:
                    continue
                await db.move(self.engine, row["id"], "completing", "failed",
                              error={"code": "interrupted", "error": "The server stopped while completing this "
                                                                    "upload. Upload it again."})
        for row in await db.in_state(self.engine, "pending"):
            if row["expires_at"] < now and await db.move(self.engine, row["id"], "pending", "expired"):
                removed += 1
                await self._drop_bytes(row)
        live = {r["object_key"] for r in await db.in_state(self.engine, "pending", "completing")}
        keys = await in_store_thread(self.store.list_prefix, INCOMING)
        for key in keys:
            if key not in live and key.split(".parts/")[0] not in live:  # expired, failed, done, or a crash's
                await in_store_thread(self.store.delete, key)
        keep = self.settings.upload_session_ttl_s
        old = [r["id"] for r in await db.in_state(self.engine, "done", "failed", "expired")
               if r["updated_at"] < now - keep]
        await db.purge(self.engine, old)
        return removed + len(old)

    async def start(self) -> None:
        """Clean what the last run left; later rounds run on the scheduler (flashml.jobs.housekeeping)."""
        try:
            await self.housekeeping(at_start=True)
        except FlashMLError as exc:
            log.warning("upload housekeeping skipped: %s", exc.message)

    async def stop(self) -> None:
        """Nothing runs on its own any more: kept so callers need not know."""
