"""Settings: one declaration, four sources in a fixed order, and docs/settings.md documents every one."""

from pathlib import Path

import pytest

from flashml.settings import FIELDS, SettingsError, load_settings, settings_table

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_are_the_embedded_appliance():
    s = load_settings({}, env={})
    assert (s.host, s.port, s.data_dir, s.device) == ("127.0.0.1", 8000, Path("flashml-data"), "auto")


def test_cli_beats_env_beats_file_beats_default(tmp_path):
    cfg = tmp_path / "flashml.toml"
    cfg.write_text('port = 9001\nhost = "0.0.0.0"\ndevice = "cpu"\n')
    env = {"FLASHML_PORT": "9002", "FLASHML_HOST": "10.0.0.1"}
    s = load_settings({"port": 9003, "host": None}, env=env, config_file=cfg)
    assert s.port == 9003  # CLI
    assert s.host == "10.0.0.1"  # env (CLI left it unset)
    assert s.device == "cpu"  # file
    assert s.max_upload_bytes == FIELDS["max_upload_bytes"].default


def test_config_file_from_environment(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("port = 9100\n")
    assert load_settings({}, env={"FLASHML_CONFIG": str(cfg)}).port == 9100


def test_list_setting_from_environment():
    s = load_settings({}, env={"FLASHML_ALLOWED_OP_DOMAINS": ",ai.onnx"})
    assert s.allowed_op_domains == ("", "ai.onnx")


@pytest.mark.parametrize("bad", ['nonsense = 1\n', 'port = "eighty"\n', "port = [\n"])
def test_bad_config_file_is_refused(tmp_path, bad):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(bad)
    with pytest.raises(SettingsError):
        load_settings({}, env={}, config_file=cfg)


def test_the_settings_page_documents_every_setting():
    page = (ROOT / "docs" / "settings.md").read_text()
    assert settings_table() in page, "docs/settings.md is out of date: run `python -m docs.generate`"


def test_settings_survive_the_trip_to_the_worker():
    s = load_settings({"port": 1234, "data_dir": "/tmp/x"}, env={})
    assert type(s).from_json(s.to_json()) == s


@pytest.mark.parametrize("values,message", [({"storage": "ftp"}, "not local or s3"),
                                            ({"storage": "s3"}, "needs s3_endpoint"),
                                            ({"device": "cuda:x"}, "setting device: 'cuda:x' is not a device"),
                                            ({"device": "gpu"}, "use cpu, auto, cuda or cuda:N")])
def test_storage_and_device_settings_are_checked(values, message):
    with pytest.raises(SettingsError, match=message):
        load_settings(values, env={})
    assert load_settings({"storage": "s3", "s3_endpoint": "minio:9000"}, env={}).s3_secure is True


@pytest.mark.parametrize("values,message", [
    ({"latency_budget_ms": 0}, "latency_budget_ms: must be above 0"),  # auto-tune would turn batching off
    ({"latency_budget_ms": "nan"}, "latency_budget_ms: must be a finite number"),
    ({"housekeeping_interval_s": "-1"}, "housekeeping_interval_s: must be above 0"),
    ({"max_queue_size": -1}, "max_queue_size: must be 0 or more"),
    ({"intra_op_threads": -2}, "intra_op_threads: must be 0 or more"),
    ({"port": 70000}, "port: must be a TCP port from 1 to 65535"),
    ({"job_online_share": 1.5}, "job_online_share: must be above 0 and at most 1"),
    ({"validation_timeout_s": "inf"}, "validation_timeout_s: must be a finite number"),
])
def test_numbers_out_of_range_are_refused_with_the_setting_named(values, message):
    with pytest.raises(SettingsError, match=message):
        load_settings(values, env={})


def test_zero_stays_allowed_where_it_means_something():
    s = load_settings({"max_queue_size": 0, "inline_run_us": 0, "load_timeout_s": 0, "upload_wait_s": 0,
                       "shadow_max_concurrency": 0, "intra_op_threads": 0}, env={})
    assert s.max_queue_size == 0 and s.inline_run_us == 0


def test_granian_io_threads_follow_the_cores_unless_set():
    from flashml.cli.serve import http_threads

    assert [http_threads(0, cores) for cores in (1, 2, 4, 8, 16, 64)] == [1, 1, 1, 2, 4, 4]
    assert http_threads(3, cores=2) == 3  # the setting wins


@pytest.mark.parametrize(("name", "bad"), [("log_format", "xml"), ("metrics_access", "everyone")])
def test_choice_settings_refuse_unknown_values(name: str, bad: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings({name: bad}, env={})
