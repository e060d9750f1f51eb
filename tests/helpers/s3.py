"""FlashML on S3 in tests: moto servers on loopback (one that can stop and start again on its port), the real
server started on one, what its bucket holds, and a store on a fresh bucket."""

from __future__ import annotations

import logging
import uuid

import httpx
from minio import Minio
from moto.server import ThreadedMotoServer

from flashml.storage.s3 import S3ArtifactStore
from tests.helpers.s3_server import ACCESS, SECRET
from tests.helpers.server_process import SERVER_FLAGS, ServerProcess, free_port

BUCKET = "flashml-e2e"


class Moto:
    """A moto server that can be stopped and started again on the same port (its data stays in-process)."""

    def __init__(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.port = free_port()
        self.endpoint = f"127.0.0.1:{self.port}"
        self.server: ThreadedMotoServer | None = None
        self.started = False

    def start(self) -> Moto:
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()
        if not self.started:  # moto keeps every bucket in process memory: start each test's store empty
            httpx.post(f"http://{self.endpoint}/moto-api/reset", timeout=10).raise_for_status()
            self.started = True
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


def s3_server(data_dir, moto: Moto, *extra: str) -> ServerProcess:
    return ServerProcess(data_dir, *SERVER_FLAGS, "--storage", "s3", "--s3-endpoint", moto.endpoint,
                         "--s3-bucket", BUCKET, "--s3-prefix", "site-a", "--no-s3-secure", *extra,
                         env={"FLASHML_S3_ACCESS_KEY": ACCESS, "FLASHML_S3_SECRET_KEY": SECRET})


def objects(moto: Moto) -> list[str]:
    client = Minio(moto.endpoint, access_key=ACCESS, secret_key=SECRET, secure=False, region="us-east-1")
    return sorted(o.object_name for o in client.list_objects(BUCKET, recursive=True))


def make_s3(endpoint: str, prefix: str = "") -> S3ArtifactStore:
    store = S3ArtifactStore(endpoint, f"b-{uuid.uuid4().hex[:12]}", prefix=prefix, secure=False,
                            access_key=ACCESS, secret_key=SECRET)
    store.prepare()
    return store
