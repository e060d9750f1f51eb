"""Build the artifact store the settings ask for."""

from __future__ import annotations

from flashml.settings import Settings
from flashml.storage.base import ArtifactStore
from flashml.storage.local import LocalArtifactStore
from flashml.storage.s3 import S3ArtifactStore, load_credentials


def open_store(settings: Settings) -> ArtifactStore:
    """The store of ``settings.storage``: ``local`` (under data_dir) or ``s3``. Nothing is contacted yet."""
    if settings.storage == "local":
        return LocalArtifactStore(settings.data_dir)
    if settings.storage == "s3":
        access, secret = load_credentials(settings.s3_credentials_file)
        return S3ArtifactStore(settings.s3_endpoint, settings.s3_bucket, prefix=settings.s3_prefix,
                               secure=settings.s3_secure, region=settings.s3_region, access_key=access,
                               secret_key=secret, timeout_s=settings.storage_timeout_s,
                               deadline_s=settings.storage_deadline_s)
    raise ValueError(f"setting storage: {settings.storage!r} is not local or s3")
