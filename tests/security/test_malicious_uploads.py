"""The malicious-upload corpus, over real HTTP: each hostile upload gets a clear 4xx with its code, the server's
memory stays flat, and nothing is left behind (no files, no half-published version, no long stored text)."""

from __future__ import annotations

import json
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.helpers import onnx_models as om
from tests.helpers import task_models as tm
from tests.helpers.server_process import ServerProcess

pytestmark = pytest.mark.server

# Short validation limits keep the hanging and greedy models quick; these tiny models need far less.
FLAGS = ("--validation-timeout-s", "6", "--validation-memory-bytes", str(768 << 20), "--upload-wait-s", "30",
         "--device", "cpu", "--no-autotune")
MAX_GROWTH_MB = 100  # the server worker's peak RSS over one upload
DEEP = 5000  # levels of nesting in the deep cases: far past any recursion limit


@dataclass(frozen=True)
class Case:
    build: Callable[[Path], Path]  # writes the upload under the folder it is given, returns its path
    code: str
    status: int = 422


def _tar(members: dict[str, bytes | Path]) -> Callable[[Path], Path]:
    return lambda d: om.make_tar_gz(d / "b.tar.gz", members)


def _zip(members: dict[str, bytes | Path]) -> Callable[[Path], Path]:
    return lambda d: om.make_zip(d / "b.zip", members)


def _special(kind: bytes, link: str = "") -> Callable[[Path], Path]:
    return lambda d: om.tar_with_special(d / "b.tar.gz", "evil", kind, link)


def _lying_zip(d: Path) -> Path:
    src = om.make_zip(d / "b.zip", {f"{i:04d}" + "n" * 2000: b"" for i in range(4000)})  # an 8 MB directory
    data = bytearray(src.read_bytes())
    end = data.rindex(b"PK\x05\x06")
    data[end + 8:end + 12] = (1).to_bytes(2, "little") * 2  # the record claims one member
    src.write_bytes(bytes(data))
    return src


def _external(location: str) -> Callable[[Path], Path]:
    def build(d: Path) -> Path:
        model = om.external_data_model(d)
        return om.set_external_data(model, location=location)
    return build


def _deep_manifest(d: Path) -> Path:
    return om.make_tar_gz(d / "b.tar.gz", {"model.onnx": om.add_model(d / "m.onnx"),
                                           "flashml.toml": f"labels = {'[' * DEEP}{']' * DEEP}\n".encode()})


def _deep_dotted_manifest(d: Path) -> Path:
    table = ".".join(["a"] * DEEP)
    return om.make_tar_gz(d / "b.tar.gz", {"model.onnx": om.add_model(d / "m.onnx"),
                                           "flashml.toml": f"[preprocess.{table}]\nx = 1\n".encode()})


CLS_TOML = b'task = "image-classification"\n[preprocess]\nsize = [32, 32]\n'


def _classifier_with_metadata(key: str, value: str) -> Callable[[Path], Path]:
    def build(d: Path) -> Path:
        import onnx
        from onnx import helper

        path = tm.image_classifier(d / "m.onnx")
        model = onnx.load(str(path))
        helper.set_model_props(model, {key: value})
        onnx.save(model, str(path))
        return om.make_tar_gz(d / "b.tar.gz", {"model.onnx": path, "flashml.toml": CLS_TOML})
    return build


def _deep_tokenizer(d: Path) -> Path:
    deep = '{"model": ' + '{"a": ' * DEEP + "1" + "}" * DEEP + "}"
    return tm.bundle(d / "b.tar.gz", 'task = "text-classification"\nlabels = ["no", "yes"]\n',
                     tm.text_classifier(d / "m.onnx"), **{"tokenizer.json": deep.encode()})


CASES: dict[str, Case] = {
    # archives
    "pax header of 400 MB": Case(lambda d: om.tar_header_bomb(d / "b.tar.gz", "pax"), "tar_header_too_large"),
    "GNU long name of 400 MB": Case(lambda d: om.tar_header_bomb(d / "b.tar.gz", "gnu"), "tar_header_too_large"),
    "5000 chained PAX headers": Case(lambda d: om.tar_header_chain(d / "b.tar.gz", 5000), "tar_header_too_large"),
    "PAX sparse map without end": Case(lambda d: om.tar_pax_sparse_map_bomb(d / "b.tar.gz"), "special_file"),
    "GNU sparse member": Case(lambda d: om.tar_gnu_sparse(d / "b.tar.gz"), "special_file"),
    "zip bomb": Case(lambda d: om.zip_bomb(d / "b.zip"), "compression_ratio"),
    "tar.gz bomb": Case(lambda d: om.tar_gz_bomb(d / "b.tar.gz"), "compression_ratio"),
    "tar symlink to /etc/passwd": Case(_special(tarfile.SYMTYPE, "/etc/passwd"), "link_in_bundle"),
    "tar hard link": Case(_special(tarfile.LNKTYPE, "model.onnx"), "link_in_bundle"),
    "zip symlink": Case(lambda d: om.zip_with_symlink(d / "b.zip"), "link_in_bundle"),
    "tar character device": Case(_special(tarfile.CHRTYPE), "special_file"),
    "tar fifo": Case(_special(tarfile.FIFOTYPE), "special_file"),
    "tar ../ member": Case(_tar({"model.onnx": b"m", "../escape.txt": b"x"}), "unsafe_path"),
    "zip absolute member": Case(_zip({"model.onnx": b"m", "/tmp/abs.txt": b"x"}), "unsafe_path"),
    "member name of 10 KB": Case(_tar({"model.onnx": b"m", "d/" * 5000 + "x": b"x"}), "unsafe_path"),
    "1100 members": Case(lambda d: om.many_members_tar(d / "b.tar.gz", 1100), "too_many_members"),
    "zip directory that lies": Case(_lying_zip, "bad_archive"),
    "text, not a model": Case(lambda d: _write(d / "x.txt", b"plainly not a model\n" * 50), "not_onnx"),
    # models
    "custom-op domain": Case(lambda d: om.custom_domain_model(d / "m.onnx"), "custom_op_domain"),
    "external data ../": Case(_external("../weights.bin"), "unsafe_external_data"),
    "external data /etc/passwd": Case(_external("/etc/passwd"), "unsafe_external_data"),
    "external data in training info": Case(lambda d: om.training_info_external_model(d / "m.onnx"),
                                           "unsafe_external_data"),
    "model that never finishes": Case(lambda d: om.hang_model(d / "m.onnx"), "validation_timeout"),
    "model that eats memory": Case(lambda d: om.memory_bomb_model(d / "m.onnx"), "validation_memory"),
    "model ONNX Runtime refuses": Case(lambda d: om.bad_session_model(d / "m.onnx"), "session_failed"),
    "refusal quoting a 1 MB node name": Case(lambda d: om.long_node_name_model(d / "m.onnx"), "session_failed"),
    # manifests and task files
    "manifest nested 5000 deep": Case(_deep_manifest, "bad_manifest"),
    "manifest table 5000 deep": Case(_deep_dotted_manifest, "bad_manifest"),
    "labels metadata nested 5000 deep": Case(_classifier_with_metadata("labels", "[" * DEEP + "]" * DEEP),
                                             "task_mismatch"),
    "labels metadata of 5 MB": Case(_classifier_with_metadata("labels", ",".join(map(str, range(800_000)))),
                                    "task_mismatch"),
    "tokenizer.json nested 5000 deep": Case(_deep_tokenizer, "task_mismatch"),
}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("corpus") / "data", *FLAGS).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def api(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    key = server.create_key("corpus", "admin")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
        good = om.add_model(tmp_path_factory.mktemp("good") / "ok.onnx")  # the lazy imports happen here
        assert _upload(client, "good", good).status_code == 201
        yield client


def _upload(api: httpx.Client, name: str, path: Path) -> httpx.Response:
    return api.post(f"/api/v1/models/{name}/versions", content=path.read_bytes(), params={"filename": path.name},
                    headers={"Content-Type": "application/octet-stream"})


def _worker_pid(server: ServerProcess) -> int:
    """Granian's worker: the server process's child, where uploads are unpacked and checked."""
    assert server.proc is not None
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == server.proc.pid:
            return int(stat.parent.name)
    return server.proc.pid


def _status_kb(pid: int, key: str) -> int:
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith(key + ":"))
    return int(line.split()[1])


def _files_of(data_dir: Path, name: str) -> list[str]:
    """Whatever the upload left: scratch files, and anything in the store named after its model."""
    scratch = [p for p in (data_dir / "tmp").rglob("*") if p.is_file()]
    named = [p for p in data_dir.rglob("*") if name in p.name or name in p.parts]
    return [str(p.relative_to(data_dir)) for p in scratch + named]


@pytest.mark.parametrize("case", list(CASES))
def test_malicious_upload(api: httpx.Client, server: ServerProcess, tmp_path: Path, case: str) -> None:
    c = CASES[case]
    body = c.build(tmp_path)
    name = "bad-" + "".join(ch if ch.isalnum() else "-" for ch in case.lower()).strip("-")[:60]
    pid = _worker_pid(server)
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # the peak RSS starts again from now
    before = _status_kb(pid, "VmRSS")
    r = _upload(api, name, body)
    growth_mb = (_status_kb(pid, "VmHWM") - before) // 1024
    assert r.status_code == c.status, (r.status_code, r.text[:500])
    err = r.json()
    assert err["code"] == c.code, err["error"][:500]
    assert err["error"] and len(r.content) < 16_000, len(r.content)  # said clearly, and short
    assert "Traceback" not in r.text and str(server.data_dir) not in r.text
    assert growth_mb < MAX_GROWTH_MB, f"the server's peak RSS grew {growth_mb} MB"
    version = api.get(f"/api/v1/models/{name}/versions/1").json()
    assert version["state"] == "failed" and version["errors"][0]["code"] == c.code
    assert len(json.dumps(version["errors"])) < 8_000
    assert [v["state"] for v in api.get(f"/api/v1/models/{name}").json()["versions"]] == ["failed"]
    assert _files_of(server.data_dir, name) == []
    assert not (server.data_dir.parent / "escape.txt").exists() and not Path("/tmp/abs.txt").exists()


def test_the_server_still_serves_after_the_corpus(api: httpx.Client) -> None:
    infer = api.post("/v2/models/good/infer", json={"inputs": [
        {"name": n, "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]} for n in "ab"]})
    assert infer.status_code == 200 and infer.json()["outputs"][0]["data"] == [2, 4, 6, 8]
