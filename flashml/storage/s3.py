"""The artifact store on MinIO or any S3-compatible server, through the ``minio`` client.

Objects live at ``<bucket>/<prefix><key>``; each carries its sha256 as user metadata when FlashML knows it.
The client is given the region, so presigning is pure computation (no network call), a short connect
timeout without connect retries, so an unreachable store fails fast as ``StorageUnavailableError``, and a
deadline on stalls (``s3_http``), so a hung one fails within ``storage_deadline_s``. A bucket that has gone
(the store restarted empty) is made again by the next write.
"""

from __future__ import annotations

import logging
import os
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

from minio import Minio
from minio.datatypes import Part
from minio.deleteobjects import DeleteObject
from minio.error import InvalidResponseError, S3Error, ServerError
from minio.helpers import DictType
from urllib3.exceptions import HTTPError

from flashml.storage.base import ArtifactStore, ObjectInfo, StorageUnavailableError, check_key, check_prefix
from flashml.storage.s3_http import is_stall, pool_manager, store_call

log = logging.getLogger("flashml.storage")
_META = "sha256"
_NETWORK_ERRORS = (HTTPError, ServerError, InvalidResponseError, ConnectionError, TimeoutError)
_MISSING = ("NoSuchKey", "NoSuchObject", "NotFound", "NoSuchBucket")  # no bucket: no object either
_GONE = "NoSuchBucket"


def load_credentials(credentials_file: str, env: dict[str, str] | None = None) -> tuple[str | None, str | None]:
    """(access key, secret key) from FLASHML_S3_*, then AWS_*, then the TOML file; never logged."""
    env = dict(os.environ) if env is None else env
    for a, s in (("FLASHML_S3_ACCESS_KEY", "FLASHML_S3_SECRET_KEY"), ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")):
        if env.get(a) and env.get(s):
            return env[a], env[s]
    if credentials_file:
        try:
            data = tomllib.loads(Path(credentials_file).expanduser().read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"cannot read the S3 credentials file {credentials_file}: {type(exc).__name__}") from None
        if not (data.get("access_key") and data.get("secret_key")):
            raise ValueError(f"the S3 credentials file {credentials_file} needs access_key and secret_key")
        return str(data["access_key"]), str(data["secret_key"])
    return None, None


class S3ArtifactStore(ArtifactStore):
    kind = "s3"

    def __init__(self, endpoint: str, bucket: str, *, prefix: str = "", secure: bool = True,
                 region: str = "us-east-1", access_key: str | None = None, secret_key: str | None = None,
                 timeout_s: float = 5.0, deadline_s: float = 60.0) -> None:
        if not endpoint:
            raise ValueError("storage = s3 needs s3_endpoint (host:port)")
        self.endpoint, self.bucket, self.secure = endpoint, bucket, secure
        self.prefix = check_prefix(prefix) if prefix.strip("/") else ""
        self.client = Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=secure, region=region,
                            http_client=pool_manager(timeout_s, deadline_s))

    def __repr__(self) -> str:  # no credentials in logs or tracebacks
        return f"S3ArtifactStore({'https' if self.secure else 'http'}://{self.endpoint}/{self.bucket}/{self.prefix})"

    def _name(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _call(self, what: str, fn, *args, **kwargs):
        try:
            with store_call():
                return fn(*args, **kwargs)
        except S3Error:
            raise
        except _NETWORK_ERRORS as exc:
            stalled = is_stall(exc) or is_stall(getattr(exc, "reason", None))
            log.warning("a storage call to %s failed: %s", self.endpoint,
                        type(getattr(exc, "reason", None) or exc).__name__)
            raise StorageUnavailableError(what, exc, why="it did not answer in time" if stalled else
                                          "it cannot be reached") from None

    def _write(self, what: str, fn, *args, **kwargs):
        """A write; when the bucket has gone (the store restarted empty), make it and write once more."""
        try:
            return self._call(what, fn, *args, **kwargs)
        except S3Error as exc:
            if exc.code != _GONE:
                raise
        log.warning("bucket %s is gone from %s (did the store restart empty?): making it again", self.bucket,
                    self.endpoint)
        self.prepare()
        return self._call(what, fn, *args, **kwargs)

    def prepare(self) -> None:
        if not self._call("the bucket check", self.client.bucket_exists, self.bucket):
            try:
                self._call("the bucket creation", self.client.make_bucket, self.bucket)
            except S3Error as exc:  # another thread (or server) made it first
                if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise
            log.info("created bucket %s on %s", self.bucket, self.endpoint)

    def check(self) -> None:
        try:
            self._call("this", self.client.bucket_exists, self.bucket)
        except S3Error as exc:
            raise StorageUnavailableError("this", exc) from None

    def _meta(self, sha256: str | None) -> DictType | None:
        return {_META: sha256} if sha256 else None

    def put_file(self, key: str, path: Path, *, sha256: str | None = None, move: bool = False) -> None:
        self._write("the upload to storage", self.client.fput_object, self.bucket, self._name(key), str(path),
                    metadata=self._meta(sha256))
        if move:
            path.unlink(missing_ok=True)

    def put_stream(self, key: str, stream: BinaryIO, size: int, *, sha256: str | None = None) -> None:
        start = stream.tell() if stream.seekable() else None

        def put():
            if start is not None:
                stream.seek(start)  # a second try (the bucket was made again) sends the bytes from the start
            return self.client.put_object(self.bucket, self._name(key), stream, size, metadata=self._meta(sha256))

        if start is None:
            self._call("the upload to storage", put)
        else:
            self._write("the upload to storage", put)

    def get_file(self, key: str, dest: Path) -> None:
        part = dest.with_name(dest.name + ".part")
        try:
            self._call("the download from storage", self.client.fget_object, self.bucket, self._name(key), str(dest),
                       tmp_file_path=str(part))
        except S3Error as exc:
            if exc.code in _MISSING:
                raise FileNotFoundError(key) from None
            raise
        finally:
            part.unlink(missing_ok=True)

    def stat(self, key: str) -> ObjectInfo | None:
        try:
            obj = self._call("the storage lookup", self.client.stat_object, self.bucket, self._name(key))
        except S3Error as exc:
            if exc.code in _MISSING:
                return None
            raise
        meta = obj.metadata or {}
        return ObjectInfo(int(obj.size or 0), meta.get(f"x-amz-meta-{_META}") or None)

    def delete(self, key: str) -> None:
        try:
            self._call("the deletion in storage", self.client.remove_object, self.bucket, self._name(key))
        except S3Error as exc:
            if exc.code != _GONE:  # no bucket: nothing to delete
                raise

    def delete_prefix(self, prefix: str) -> int:
        names = [self.prefix + k for k in self.list_prefix(prefix)]
        if not names:
            return 0
        errors = self._call("the deletion in storage", lambda: list(
            self.client.remove_objects(self.bucket, [DeleteObject(n) for n in names])))
        if errors:
            raise StorageUnavailableError("the deletion in storage", errors[0])
        return len(names)

    def list_prefix(self, prefix: str) -> list[str]:
        full = self.prefix + check_prefix(prefix)
        try:
            objects = self._call("the storage listing", lambda: list(
                self.client.list_objects(self.bucket, prefix=full, recursive=True)))
        except S3Error as exc:
            if exc.code != _GONE:  # no bucket: nothing under any prefix
                raise
            return []
        return sorted(o.object_name[len(self.prefix):] for o in objects if not o.is_dir)

    def presigned_put_url(self, key: str, expires_s: float) -> str | None:
        return self.client.presigned_put_object(self.bucket, self._name(key),
                                                expires=timedelta(seconds=max(1, int(expires_s))))

    # The minio client has no public calls for presigned multipart uploads; these are its S3 API wrappers.

    def start_multipart(self, key: str) -> str:
        return self._write("the upload to storage", self.client._create_multipart_upload, self.bucket,
                           self._name(key), {"Content-Type": "application/octet-stream"})

    def presigned_part_url(self, key: str, multipart_id: str, part: int, expires_s: float) -> str | None:
        return self.client.get_presigned_url("PUT", self.bucket, self._name(key),
                                             expires=timedelta(seconds=max(1, int(expires_s))),
                                             extra_query_params={"partNumber": str(part), "uploadId": multipart_id})

    def put_part(self, key: str, multipart_id: str, part: int, path: Path) -> None:
        self._call("the upload to storage", self.client._upload_part, self.bucket, self._name(key),
                   path.read_bytes(), None, multipart_id, part)
        path.unlink(missing_ok=True)

    def complete_multipart(self, key: str, multipart_id: str, parts: int) -> None:
        found: dict[int, Part] = {}
        marker = None
        try:
            while True:  # S3 lists at most 1000 parts per call
                page = self._call("the upload to storage", self.client._list_parts, self.bucket, self._name(key),
                                  multipart_id, part_number_marker=marker)
                found.update({p.part_number: p for p in page.parts})
                if not page.is_truncated:
                    break
                marker = page.next_part_number_marker
        except S3Error as exc:
            raise ValueError(f"the multipart upload is unknown to the store ({exc.code})") from None
        missing = [n for n in range(1, parts + 1) if n not in found]
        if missing:
            raise ValueError(f"part {missing[0]} of {parts} has not arrived")
        self._call("the upload to storage", self.client._complete_multipart_upload, self.bucket, self._name(key),
                   multipart_id, [Part(n, found[n].etag) for n in range(1, parts + 1)])

    def abort_multipart(self, key: str, multipart_id: str) -> None:
        try:
            self._call("the upload to storage", self.client._abort_multipart_upload, self.bucket, self._name(key),
                       multipart_id)
        except S3Error as exc:
            if exc.code not in ("NoSuchUpload", _GONE):
                raise
