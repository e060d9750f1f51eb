"""flashml doctor's checks on real folders, a real SQLite file and real sockets: a healthy node, and each bad
state this machine can make, with the status and the sentence each gives."""

from __future__ import annotations

import sqlite3

import onnxruntime as ort

from flashml.ops import doctor_data, doctor_database, doctor_network, doctor_runtime
from flashml.ops.doctor import DoctorOptions, report, run_checks
from flashml.runtime.devices import CUDA, cuda_works
from tests.helpers.doctor import by_name, free_port, healthy, settings


def test_a_healthy_data_dir_passes_every_check_but_the_absent_server(tmp_path):
    rows = by_name(run_checks(healthy(tmp_path), DoctorOptions(min_free_bytes=1)).checks)
    assert {n: c.status for n, c in rows.items() if c.status != "ok"} == {"server": "warn"}
    assert "no server answers" in rows["server"].message
    assert "quick_check" in rows["database"].message and "match" in rows["schema"].message


def test_a_corrupt_database_fails(tmp_path):
    s = healthy(tmp_path)
    s.db_path.write_bytes(b"not a database at all" * 100)
    (row,) = doctor_database.database_checks(s.db_path)
    assert row.status == "fail" and "not a usable SQLite database" in row.message
    assert report([row]).exit_code == 2


def test_missing_columns_are_announced_and_unknown_ones_warned(tmp_path):
    s = healthy(tmp_path)
    with sqlite3.connect(s.db_path) as conn:
        conn.execute("ALTER TABLE users DROP COLUMN unlocked_at")
    rows = by_name(doctor_database.database_checks(s.db_path))
    assert rows["schema"].status == "ok" and "1 column will be added (users.unlocked_at)" in rows["schema"].message
    with sqlite3.connect(s.db_path) as conn:
        conn.execute("ALTER TABLE users ADD COLUMN from_the_future TEXT")
    rows = by_name(doctor_database.database_checks(s.db_path))
    assert rows["schema"].status == "warn" and "users.from_the_future" in rows["schema"].message


def test_a_loose_data_dir_is_a_warning(tmp_path):
    s = healthy(tmp_path)
    s.data_dir.chmod(0o755)
    rows = by_name(doctor_data.data_dir_checks(s, 1))
    assert rows["data_dir_private"].status == "warn" and "mode 0755" in rows["data_dir_private"].message


def test_low_disk_below_the_threshold_warns(tmp_path):
    rows = by_name(doctor_data.data_dir_checks(healthy(tmp_path), 1 << 60))
    assert rows["disk_space"].status == "warn" and "--min-free" in rows["disk_space"].message


def test_an_unreachable_s3_store_fails(tmp_path):
    s = settings(tmp_path, storage="s3", s3_endpoint=f"127.0.0.1:{free_port()}", s3_secure=False)
    row = doctor_data.store_check(s)
    assert row.status == "fail" and "cannot be reached" in row.message


def test_listening_beyond_loopback_without_tls_warns(tmp_path):
    s = settings(tmp_path, host="0.0.0.0")
    row = by_name(doctor_network.network_checks(s, 1))["exposure"]
    assert row.status == "warn" and "without TLS" in row.message


def test_a_tls_file_that_is_not_pem_fails(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("not a certificate")
    key.write_text("not a key")
    s = settings(tmp_path, tls_certificate=str(cert), tls_key=str(key))
    row = by_name(doctor_network.network_checks(s, 1))["tls_certificate"]
    assert row.status == "fail" and "not a readable PEM certificate" in row.message


def test_cuda_that_does_not_load_is_said_plainly(tmp_path):
    rows = {d: by_name(doctor_runtime.provider_checks(settings(tmp_path, device=d)))["cuda"]
            for d in ("auto", "cuda", "cpu")}
    if CUDA in ort.get_available_providers() and not cuda_works(0):
        # No GPU here: a warning under auto only where an NVIDIA driver answers (a GPU was meant to work).
        auto = "warn" if doctor_runtime.driver_present() else "ok"
        assert rows["auto"].status == auto and rows["cuda"].status == "fail" and rows["cpu"].status == "ok"
        assert "does not load" in rows["auto"].message and "could not be loaded" in rows["auto"].message
    elif cuda_works(0):  # a machine with a working GPU
        assert all(r.status == "ok" for r in rows.values())
