"""bench/observability.py: its table puts every server beside the baseline, as a ratio."""

from bench.observability import SERVERS, report


def test_the_report_gives_each_server_its_ratio_to_the_release_before():
    figures = {"rps": 1000.0, "p50_ms": 1.0, "p99_ms": 2.0, "cpu_us_per_request": 300.0}
    results = {"servers": {name: {1: figures} for name in SERVERS},
               "ratios_to_before": {name: {1: 1.0 if name == "before" else 0.97} for name in SERVERS}}
    table = report(results)
    assert table.count("\n") == len(SERVERS) + 1
    assert "| logged | 1 | 1000 | 1.00 | 2.00 | 300 | 0.97x |" in table
    assert "| before | 1 | 1000 | 1.00 | 2.00 | 300 | 1.00x |" in table
