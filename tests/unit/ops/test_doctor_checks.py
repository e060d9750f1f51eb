"""More of flashml doctor's bad states, on real certificates (made with cryptography), real sockets, a real S3
server (moto) and real folders: each with the status and the sentence it gives, and the exit status it leads to."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import onnxruntime as ort
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from flashml.ops import doctor_data, doctor_network, doctor_runtime
from flashml.ops.doctor import DoctorOptions, fail, ok, report, run_checks, warn
from flashml.runtime.devices import CUDA, cuda_works
from tests.helpers.doctor import by_name, healthy, settings
from tests.helpers.s3_server import ACCESS, SECRET


def make_pair(folder: Path, *, days_before: float = -1, days_after: float = 365, name: str = "node.test"):
    """A self-signed certificate valid from now+days_before to now+days_after, and its key (0600)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now + dt.timedelta(days=days_before)).not_valid_after(now + dt.timedelta(days=days_after))
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / f"{name}.crt", folder / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


def tls_rows(tmp_path: Path, cert: Path, key: Path):
    s = settings(tmp_path, host="0.0.0.0", tls_certificate=str(cert), tls_key=str(key))
    return by_name(doctor_network.network_checks(s, 1))


def test_a_good_certificate_and_its_private_key_are_ok_and_tls_quiets_the_exposure_warning(tmp_path):
    rows = tls_rows(tmp_path, *make_pair(tmp_path))
    assert rows["tls_certificate"].status == "ok" and "CN=node.test" in rows["tls_certificate"].message
    assert "valid until" in rows["tls_certificate"].message
    assert rows["tls_key"].status == "ok" and "private" in rows["tls_key"].message
    assert rows["exposure"].status == "ok" and "HTTPS" in rows["exposure"].message


def test_an_expired_certificate_fails(tmp_path):
    rows = tls_rows(tmp_path, *make_pair(tmp_path, days_before=-30, days_after=-1))
    assert rows["tls_certificate"].status == "fail" and "expired on" in rows["tls_certificate"].message


def test_a_certificate_not_yet_valid_fails(tmp_path):
    rows = tls_rows(tmp_path, *make_pair(tmp_path, days_before=3, days_after=365))
    assert rows["tls_certificate"].status == "fail" and "is not valid before" in rows["tls_certificate"].message


def test_a_certificate_expiring_soon_warns(tmp_path):
    rows = tls_rows(tmp_path, *make_pair(tmp_path, days_after=10))
    assert rows["tls_certificate"].status == "warn" and "renew it soon" in rows["tls_certificate"].message


def test_a_key_of_another_certificate_fails(tmp_path):
    cert, _ = make_pair(tmp_path, name="one.test")
    _, other_key = make_pair(tmp_path, name="two.test")
    rows = tls_rows(tmp_path, cert, other_key)
    assert rows["tls_certificate"].status == "ok"
    assert rows["tls_key"].status == "fail" and "is not the key of the certificate" in rows["tls_key"].message


def test_a_key_others_may_read_warns(tmp_path):
    cert, key = make_pair(tmp_path)
    key.chmod(0o644)
    rows = tls_rows(tmp_path, cert, key)
    assert rows["tls_key"].status == "warn" and "mode 0644" in rows["tls_key"].message


def test_a_key_with_a_passphrase_fails(tmp_path):
    cert, key_path = make_pair(tmp_path)
    key = serialization.load_pem_private_key(key_path.read_bytes(), None)
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.BestAvailableEncryption(b"secret")))
    rows = tls_rows(tmp_path, cert, key_path)
    assert rows["tls_key"].status == "fail" and "passphrase" in rows["tls_key"].message


def test_a_missing_certificate_file_is_the_one_thing_to_fix(tmp_path):
    """Settings serve would refuse (a TLS file that is not there): the doctor says so, exit 2, and --json parses."""
    from click.testing import CliRunner

    from flashml.cli import main

    _, key = make_pair(tmp_path)
    out = CliRunner().invoke(main, ["doctor", "--json", "--data-dir", str(tmp_path / "data"),
                                    "--tls-certificate", str(tmp_path / "absent.crt"), "--tls-key", str(key)])
    result = json.loads(out.output)
    rows = by_name_json(result["checks"])
    assert out.exit_code == 2 and result["status"] == "fail" and result["exit_code"] == 2
    assert rows["settings"]["status"] == "fail" and "absent.crt is not a readable file" in rows["settings"]["message"]
    assert "flashml serve would refuse to start" in rows["settings"]["message"]


def by_name_json(checks):
    return {c["name"]: c for c in checks}


def test_a_port_held_by_another_program_fails(tmp_path):
    """A plain HTTP server that is not FlashML on the port: serve could not listen there."""
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class NotFlashML(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), NotFlashML)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        s = settings(tmp_path, port=server.server_address[1])
        row = by_name(doctor_network.network_checks(s, 2))["server"]
    finally:
        server.shutdown()
        server.server_close()
    assert row.status == "fail" and "something other than FlashML holds" in row.message


def test_a_port_held_by_something_silent_fails_within_the_timeout(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        s = settings(tmp_path, port=sock.getsockname()[1])
        started = time.monotonic()
        row = by_name(doctor_network.network_checks(s, 0.5))["server"]
        took = time.monotonic() - started
    assert row.status == "fail" and "does not answer FlashML's HTTP" in row.message
    assert took < 5


def test_an_address_of_another_machine_fails(tmp_path):
    row = by_name(doctor_network.network_checks(settings(tmp_path, host="192.0.2.1"), 1))["listen"]
    assert row.status == "fail" and "not an address of this machine" in row.message


def test_an_unreachable_s3_store_fails_quickly(tmp_path):
    s = settings(tmp_path, storage="s3", s3_endpoint=f"127.0.0.1:{_closed_port()}", s3_secure=False)
    started = time.monotonic()
    row = doctor_data.store_check(s)
    assert time.monotonic() - started < 10
    assert row.status == "fail" and "cannot be reached" in row.message and "refused" in row.message.lower()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _s3_settings(tmp_path: Path, endpoint: str, bucket: str):
    creds = tmp_path / "s3.toml"
    creds.write_text(f'access_key = "{ACCESS}"\nsecret_key = "{SECRET}"\n')
    creds.chmod(0o600)
    return settings(tmp_path, storage="s3", s3_endpoint=endpoint, s3_secure=False, s3_bucket=bucket,
                    s3_credentials_file=str(creds))


def test_a_reachable_s3_store_is_ok_and_a_missing_bucket_warns(tmp_path, s3_endpoint):
    import minio

    row = doctor_data.store_check(_s3_settings(tmp_path, s3_endpoint, "doctor-missing"))
    assert row.status == "warn" and "the bucket does not exist" in row.message
    minio.Minio(s3_endpoint, access_key=ACCESS, secret_key=SECRET, secure=False).make_bucket("doctor-there")
    row = doctor_data.store_check(_s3_settings(tmp_path, s3_endpoint, "doctor-there"))
    assert row.status == "ok", row.message


def test_a_data_dir_path_that_is_a_file_fails(tmp_path):
    s = settings(tmp_path)
    s.data_dir.write_text("a file where the folder should be")
    (row,) = doctor_data.data_dir_checks(s, 1)
    assert row.status == "fail" and "is not a folder" in row.message


def test_a_data_dir_this_user_cannot_write_fails(tmp_path):
    """The write is really tried: as another user (root writes anywhere) on a private folder of root's."""
    s = healthy(tmp_path)
    code = ("import json, sys; from flashml.ops import doctor_data; from flashml.settings import load_settings; "
            "s = load_settings({'data_dir': sys.argv[1]}, env={}); "
            "print(json.dumps([[c.name, c.status, c.message] for c in doctor_data.data_dir_checks(s, 1)]))")
    args = [sys.executable, "-c", code, str(s.data_dir)]
    if os.geteuid() == 0:
        for folder in (tmp_path, *tmp_path.parents):  # let the other user reach the folder (not write in it)
            if folder != folder.parent:
                folder.chmod(folder.stat().st_mode | 0o005)
        s.data_dir.chmod(0o705)
        args = [shutil.which("setpriv") or "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *args]
    else:
        s.data_dir.chmod(0o500)
    out = subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[3])
    rows = {name: (status, message) for name, status, message in json.loads(out.stdout)}
    assert rows["data_dir_writable"][0] == "fail" and "cannot write in" in rows["data_dir_writable"][1]
    assert rows["data_dir_private"][0] == "warn"


def test_the_disk_threshold_option_reaches_the_report(tmp_path):
    s = healthy(tmp_path)
    low = run_checks(s, DoctorOptions(min_free_bytes=1 << 60))
    assert by_name(low.checks)["disk_space"].status == "warn" and low.exit_code == 1
    assert by_name(run_checks(s, DoctorOptions(min_free_bytes=1)).checks)["disk_space"].status == "ok"


def test_exit_codes_follow_the_worst_row():
    assert report([ok("a", "."), ok("b", ".")]).exit_code == 0
    assert report([ok("a", "."), warn("b", ".")]).exit_code == 1
    assert report([warn("a", "."), fail("b", "."), ok("c", ".")]).exit_code == 2
    assert report([fail("a", ".")]).status == "fail"


def test_how_much_a_cuda_that_does_not_load_matters(tmp_path):
    need = {(d, driver): doctor_runtime.gpu_need(settings(tmp_path, device=d), True, driver)
            for d in ("auto", "cpu", "cuda", "cuda:1") for driver in (False, True)}
    assert need == {("auto", False): "ok", ("auto", True): "warn", ("cpu", False): "ok", ("cpu", True): "ok",
                    ("cuda", False): "fail", ("cuda", True): "fail", ("cuda:1", False): "fail",
                    ("cuda:1", True): "fail"}
    # Not even listed (a CPU-only onnxruntime): auto needs nothing, cuda still fails.
    assert doctor_runtime.gpu_need(settings(tmp_path, device="auto"), False, True) == "ok"
    assert doctor_runtime.gpu_need(settings(tmp_path, device="cuda"), False, False) == "fail"


def test_no_driver_is_ok_under_auto_and_cpu_and_fails_when_cuda_is_asked(tmp_path):
    rows = {d: doctor_runtime.gpu_check(settings(tmp_path, device=d)) for d in ("auto", "cpu", "cuda")}
    if doctor_runtime.driver_present():  # a GPU machine: the driver answers and lists its GPUs
        assert rows["cpu"].status == "ok" and "NVIDIA driver" in rows["cpu"].message
        return
    assert rows["auto"].status == "ok" and "models run on the CPU (device is auto)" in rows["auto"].message
    assert rows["cpu"].status == "ok" and "none is needed" in rows["cpu"].message
    assert rows["cuda"].status == "fail" and "device is cuda, which needs one" in rows["cuda"].message
    if CUDA in ort.get_available_providers() and not cuda_works(0):  # onnxruntime-gpu without a GPU (this box)
        cuda = by_name(doctor_runtime.provider_checks(settings(tmp_path, device="auto")))["cuda"]
        assert cuda.status == "ok" and "does not load" in cuda.message and "no NVIDIA driver" in cuda.message
