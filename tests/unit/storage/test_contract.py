"""One contract for every artifact store: the same tests run on local disk and on S3 (moto on loopback)."""

from __future__ import annotations

import contextlib
import io
import os
import socket
import threading
import time
import uuid

import httpx
import pytest

from flashml.errors import BadRequestError
from flashml.storage.base import CHECKSUMS_NAME, ArtifactStore, StorageUnavailableError, file_sha256
from flashml.storage.local import LocalArtifactStore
from flashml.storage.s3 import S3ArtifactStore, load_credentials
from tests.helpers.s3 import make_s3
from tests.helpers.s3_server import ACCESS, SECRET
from tests.helpers.server_process import free_port


@pytest.fixture(params=["local", "s3", "s3-prefixed"])
def store(request, tmp_path) -> ArtifactStore:
    if request.param == "local":
        s = LocalArtifactStore(tmp_path / "data")
        s.prepare()
        return s
    endpoint = request.getfixturevalue("s3_endpoint")
    return make_s3(endpoint, "team/flashml/" if request.param == "s3-prefixed" else "")


def test_put_get_stat_delete_a_file(store, tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"hello artifact" * 1000)
    digest = file_sha256(src)
    key = "uploads/alice/adder-v1.onnx"
    assert store.stat(key) is None and not store.exists(key)
    store.put_file(key, src, sha256=digest)
    info = store.stat(key)
    assert info.size == src.stat().st_size
    assert info.sha256 == (None if store.kind == "local" else digest)  # local disk does not record it
    assert store.exists(key) and src.exists()
    out = tmp_path / "out.bin"
    store.get_file(key, out)
    assert out.read_bytes() == src.read_bytes()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []
    store.delete(key)
    assert not store.exists(key)
    store.delete(key)  # deleting what is gone is fine


def test_put_stream_and_move(store, tmp_path):
    data = bytes(range(256)) * 5000
    store.put_stream("incoming/abc", io.BytesIO(data), len(data))
    assert store.stat("incoming/abc").size == len(data)
    src = tmp_path / "moved.bin"
    src.write_bytes(b"x" * 10)
    store.put_file("incoming/def", src, move=True)
    assert store.stat("incoming/def").size == 10
    out = tmp_path / "back"
    store.get_file("incoming/abc", out)
    assert out.read_bytes() == data


def test_missing_object_is_file_not_found(store, tmp_path):
    with pytest.raises(FileNotFoundError):
        store.get_file("models/none/v1/model.onnx", tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_list_and_delete_prefix_are_folder_scoped(store, tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"1")
    for key in ("models/a/v1/model.onnx", "models/a/v1/sub/w.bin", "models/a/v10/model.onnx", "models/ab/v1/x"):
        store.put_file(key, f)
    assert store.list_prefix("models/a/v1") == ["models/a/v1/model.onnx", "models/a/v1/sub/w.bin"]
    assert store.list_prefix("models/a/") == ["models/a/v1/model.onnx", "models/a/v1/sub/w.bin",
                                              "models/a/v10/model.onnx"]
    assert store.delete_prefix("models/a/v1/") == 2
    assert store.list_prefix("models/") == ["models/a/v10/model.onnx", "models/ab/v1/x"]
    assert store.delete_prefix("models/nothing") == 0
    assert store.list_prefix("models/nothing") == []


def test_publish_dir_writes_every_file_and_checksums(store, tmp_path):
    src = tmp_path / "staging"
    (src / "sub").mkdir(parents=True)
    (src / "model.onnx").write_bytes(b"m" * 100)
    (src / "sub" / "w.bin").write_bytes(b"w" * 50)
    (src / CHECKSUMS_NAME).write_text("{}")
    store.publish_dir("models/m/v3", src, ["model.onnx", "sub/w.bin", CHECKSUMS_NAME])
    assert store.list_prefix("models/m/v3") == ["models/m/v3/checksums.json", "models/m/v3/model.onnx",
                                                "models/m/v3/sub/w.bin"]


@pytest.mark.parametrize("key", ["../x", "/abs", "a//b", "models/../../etc", "", "a/./b"])
def test_bad_keys_are_refused(store, key):
    with pytest.raises(BadRequestError):
        store.stat(key)


def test_presigned_put_url(store, tmp_path):
    url = store.presigned_put_url("incoming/up1", 600)
    if store.kind == "local":
        assert url is None
        return
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=600" in url
    body = b"bytes sent straight to the store" * 100
    assert httpx.put(url, content=body).status_code == 200
    assert store.stat("incoming/up1").size == len(body)


def test_local_store_gives_its_path_and_s3_does_not(store):
    path = store.local_path("models/m/v1/model.onnx")
    assert (path is None) == (store.kind == "s3")


def test_unreachable_s3_fails_fast_with_storage_unavailable(tmp_path):
    store = S3ArtifactStore(f"127.0.0.1:{free_port()}", "nobucket", secure=False, access_key=ACCESS,
                            secret_key=SECRET, timeout_s=1)
    for call in (store.check, store.prepare, lambda: store.stat("models/a/v1/x"), lambda: store.list_prefix("models"),
                 lambda: store.get_file("models/a/v1/x", tmp_path / "x"), lambda: store.delete_prefix("models")):
        with pytest.raises(StorageUnavailableError) as err:
            call()
        assert err.value.status == 503 and err.value.code == "storage_unavailable"
        assert "unreachable" in err.value.message
    # presigning is computed locally: it works without the store
    assert store.presigned_put_url("incoming/x", 60).startswith("http://127.0.0.1:")


def test_credentials_come_from_env_then_file_and_are_never_shown(tmp_path):
    assert load_credentials("", env={"FLASHML_S3_ACCESS_KEY": "a", "FLASHML_S3_SECRET_KEY": "s"}) == ("a", "s")
    assert load_credentials("", env={"AWS_ACCESS_KEY_ID": "b", "AWS_SECRET_ACCESS_KEY": "t"}) == ("b", "t")
    creds = tmp_path / "creds.toml"
    creds.write_text('access_key = "c"\nsecret_key = "very-secret"\n')
    assert load_credentials(str(creds), env={}) == ("c", "very-secret")
    assert load_credentials("", env={}) == (None, None)
    creds.write_text('access_key = "c"\n')
    with pytest.raises(ValueError) as err:
        load_credentials(str(creds), env={})
    assert "very-secret" not in str(err.value)
    store = S3ArtifactStore("127.0.0.1:9", "b", secure=False, access_key="AKIA", secret_key="very-secret")
    assert "very-secret" not in repr(store) and "AKIA" not in repr(store)


def test_multipart_upload_joins_the_parts_in_order(store, tmp_path):
    part_size = 5 * 1024 * 1024  # S3's smallest part (all but the last)
    data = [bytes([n]) * part_size for n in (1, 2)] + [b"tail" * 100]
    key = "incoming/big"
    mp = store.start_multipart(key)
    for n, chunk in enumerate(data, 1):
        url = store.presigned_part_url(key, mp, n, 600)
        if url is None:  # local disk: FlashML receives the parts itself
            part = tmp_path / f"p{n}"
            part.write_bytes(chunk)
            store.put_part(key, mp, n, part)
        else:
            assert "uploadId=" in url and f"partNumber={n}" in url
            assert httpx.put(url, content=chunk).status_code == 200
    store.complete_multipart(key, mp, 3)
    out = tmp_path / "joined"
    store.get_file(key, out)
    assert out.read_bytes() == b"".join(data)
    assert store.list_prefix("incoming/") == [key]


def test_multipart_with_a_missing_part_is_refused_and_can_be_aborted(store, tmp_path):
    key = "incoming/gap"
    mp = store.start_multipart(key)
    part = tmp_path / "p"
    part.write_bytes(b"x" * (5 * 1024 * 1024))
    store.put_part(key, mp, 1, part)
    with pytest.raises(ValueError, match="part 2 of 2"):
        store.complete_multipart(key, mp, 2)
    store.abort_multipart(key, mp)
    store.abort_multipart(key, mp)  # twice is fine
    assert store.list_prefix("incoming/") == [] and not store.exists(key)


def test_a_vanished_bucket_reads_as_empty_and_the_next_write_makes_it_again(s3_endpoint, tmp_path):
    store = make_s3(s3_endpoint, "team/")
    src = tmp_path / "src.bin"
    src.write_bytes(b"model bytes")
    store.put_file("models/a/v1/model.onnx", src)
    store.delete_prefix("models/")
    store.client.remove_bucket(store.bucket)  # what a store that restarted empty looks like
    assert store.stat("models/a/v1/model.onnx") is None
    assert store.list_prefix("models/") == [] and store.delete_prefix("models/") == 0
    store.delete("models/a/v1/model.onnx")
    with pytest.raises(FileNotFoundError):
        store.get_file("models/a/v1/model.onnx", tmp_path / "out.bin")
    store.put_file("models/a/v1/model.onnx", src)  # not NoSuchBucket: the bucket is made again
    assert store.list_prefix("models/") == ["models/a/v1/model.onnx"]
    store.delete_prefix("models/")
    store.client.remove_bucket(store.bucket)
    store.put_stream("incoming/x", io.BytesIO(b"streamed"), 8)
    assert store.stat("incoming/x").size == 8


class _SlowLink:
    """A TCP relay in front of the store whose answers move at ``rate`` bytes a second: slow, never still.

    Only answers: a slow request body sits in the sender's socket buffers, which look like silence at its end.
    """

    def __init__(self, upstream: str, rate: int) -> None:
        self.upstream, self.rate = upstream.rsplit(":", 1), rate
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection((self.upstream[0], int(self.upstream[1])))
            for src, dst, rate in ((client, upstream, None), (upstream, client, self.rate)):
                threading.Thread(target=self._pump, args=(src, dst, rate), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, rate: int | None) -> None:
        try:
            while data := src.recv(32 << 10):
                dst.sendall(data)
                if rate:
                    time.sleep(len(data) / rate)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.listener.close()


def test_a_slow_transfer_that_keeps_moving_outlasts_the_deadline(s3_endpoint, tmp_path):
    """The deadline is on silence, not on length: a 6 MiB download at 3 MiB/s takes 2 s, with a 1 s deadline."""
    link = _SlowLink(s3_endpoint, 3 << 20)
    try:
        store = S3ArtifactStore(link.endpoint, f"b-{uuid.uuid4().hex[:12]}", secure=False, access_key=ACCESS,
                                secret_key=SECRET, timeout_s=1, deadline_s=1)
        store.prepare()
        src = tmp_path / "big.bin"
        src.write_bytes(os.urandom(6 << 20))
        store.put_file("models/big/v1/model.onnx", src)
        started = time.monotonic()
        store.get_file("models/big/v1/model.onnx", tmp_path / "back.bin")
        assert time.monotonic() - started > 1.5  # well past the deadline, and fine
        assert file_sha256(tmp_path / "back.bin") == file_sha256(src)
    finally:
        link.close()
