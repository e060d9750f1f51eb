"""bench/multinode.py: its table puts each variant beside one node answering directly, with where the CPU went."""

from bench.multinode import report


def test_the_report_gives_each_variant_its_ratio_to_one_node_direct():
    def figures(rps: float) -> dict:
        return {"rps": rps, "p50_ms": 4.0, "p99_ms": 9.5, "non_2xx": 0.0, "cpu_us_per_request": 0.0,
                "rows_per_batch": 3.25, "cpu_us_nodes": 150.0, "cpu_us_haproxy": 40.0, "cpu_us_postgres": 2.0}

    result = {"model": "mlp", "clients": 32, "seconds": 5, "rounds": 3, "cores": 2,
              "variants": {"direct, 1 node": figures(8000.0), "haproxy, 1 node": figures(6000.0),
                           "haproxy, 3 nodes": figures(4000.0)}}
    table = report(result).splitlines()
    assert table[0] == "mlp, 32 clients, 3 rounds of 5 s (2 cores):"
    assert "| direct, 1 node | 8,000 | 1.00 | 4.00 | 9.50 | 0 | 3.2 | 150 | 40 | 2 |" in table
    assert "| haproxy, 3 nodes | 4,000 | 0.50 | 4.00 | 9.50 | 0 | 3.2 | 150 | 40 | 2 |" in table
