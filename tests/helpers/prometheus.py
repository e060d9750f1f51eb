"""A real Prometheus for the tests: Debian's /usr/bin/prometheus on a free loopback port, its own storage folder,
and a scrape config written for the targets a test names; queried through its HTTP API as Grafana would.

    with PrometheusServer(tmp_path, [ScrapeTarget("flashml", server.url)]) as prom:
        prom.wait_for_scrape("flashml", after=time.time())
        prom.value('flashml_inference_count_total{model="m"}')
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.helpers.server_process import free_port

PROMETHEUS = Path("/usr/bin/prometheus")
INSTALL = ("the Prometheus tests need Debian's prometheus at /usr/bin/prometheus: "
           "sudo apt-get install --no-install-recommends prometheus (.ci/run does it)")
SCRAPE_INTERVAL_S = 1


@dataclass(frozen=True)
class ScrapeTarget:
    """One scrape job: ``url`` is the server's base address (its /metrics is scraped); ``credentials_file`` holds an
    API key that Prometheus sends as a bearer token, as docs/observability.md tells users to configure it."""

    job: str
    url: str
    credentials_file: Path | None = None


def scrape_config(targets: list[ScrapeTarget]) -> str:
    """prometheus.yml for ``targets`` (JSON is YAML, so no YAML writer is needed)."""
    jobs = []
    for t in targets:
        parts = urlsplit(t.url)
        job: dict = {"job_name": t.job, "scheme": parts.scheme, "metrics_path": "/metrics",
                     "static_configs": [{"targets": [parts.netloc]}]}
        if t.credentials_file is not None:
            job["authorization"] = {"type": "Bearer", "credentials_file": str(t.credentials_file)}
        jobs.append(job)
    return json.dumps({"global": {"scrape_interval": f"{SCRAPE_INTERVAL_S}s",
                                  "scrape_timeout": f"{SCRAPE_INTERVAL_S}s"}, "scrape_configs": jobs}, indent=2)


class PrometheusServer:
    """Prometheus in a subprocess on 127.0.0.1, storing under ``folder``; a context manager that waits until it
    answers /-/ready and stops it (SIGTERM, then SIGKILL) on the way out. Fails, never skips, without the binary."""

    def __init__(self, folder: Path, targets: list[ScrapeTarget], binary: Path = PROMETHEUS) -> None:
        if not binary.exists():
            pytest.fail(INSTALL)
        self.binary = binary
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_path = folder / "prometheus.yml"
        self.log_path = folder / "prometheus.log"
        self.config_path.write_text(scrape_config(targets))
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 30.0) -> PrometheusServer:
        (self.folder / "data").mkdir(exist_ok=True)
        self._log = open(self.log_path, "w")
        # --web.listen-address on loopback only; no console templates: the package's defaults point at /etc.
        self.proc = subprocess.Popen(
            [str(self.binary), f"--config.file={self.config_path}", f"--storage.tsdb.path={self.folder / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=self._log, stderr=subprocess.STDOUT, cwd=self.folder, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise AssertionError(f"prometheus did not become ready in {timeout} s:\n{self.log()}")

    def stop(self, timeout: float = 20.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)  # Prometheus flushes its head block and exits 0 on SIGTERM
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)
        finally:
            self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def query(self, promql: str, at: float | None = None) -> list[dict]:
        """The instant vector (or scalar, as one sample) /api/v1/query answers for ``promql`` now, or at the Unix
        time ``at`` (each series' latest sample at or before it)."""
        params = {"query": promql} if at is None else {"query": promql, "time": f"{at:.3f}"}
        r = httpx.get(f"{self.url}/api/v1/query", params=params, timeout=10)
        body = r.json()
        assert r.status_code == 200 and body["status"] == "success", f"{promql}: {r.status_code} {r.text}"
        data = body["data"]
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return data["result"]

    def value(self, promql: str, at: float | None = None) -> float:
        """The one number ``promql`` gives (now, or at ``at``); an AssertionError when it gives none or several."""
        result = self.query(promql, at)
        assert len(result) == 1, f"{promql}: expected one series, got {result}"
        return float(result[0]["value"][1])

    def targets(self) -> list[dict]:
        r = httpx.get(f"{self.url}/api/v1/targets", params={"state": "active"}, timeout=10)
        assert r.status_code == 200, r.text
        return r.json()["data"]["activeTargets"]

    def target(self, job: str) -> dict:
        """The one active target of ``job``: its health ("up", "down"), lastError, lastScrape, ..."""
        (found,) = [t for t in self.targets() if t["labels"].get("job") == job]
        return found

    def wait_for_scrape(self, job: str, *, after: float, timeout: float = 20.0) -> float:
        """Wait until Prometheus has stored a scrape of ``job`` that started after the Unix time ``after`` (so it
        holds everything answered before ``after``); that scrape's time, to query the numbers it stored."""
        deadline = time.monotonic() + timeout
        seen: list[dict] = []
        while time.monotonic() < deadline:
            seen = [t for t in self.targets() if t["labels"].get("job") == job]
            if seen and _unix(seen[0]["lastScrape"]) > after:
                # lastScrape is when it began; the samples carry that time and are queryable once it ended.
                time.sleep(seen[0]["lastScrapeDuration"] + 0.05)
                return _unix(seen[0]["lastScrape"])
            time.sleep(0.2)
        raise AssertionError(f"prometheus did not scrape job {job} after {after} in {timeout} s: {seen}\n{self.log()}")


def _unix(rfc3339: str) -> float:
    """Prometheus's lastScrape (RFC 3339 with nanoseconds, in its local time zone) as Unix seconds; Python 3.11's
    fromisoformat reads the nine digits (keeping six) and any offset."""
    return datetime.fromisoformat(rfc3339).timestamp()
