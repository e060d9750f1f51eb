"""Shadow comparison rules and the drop-when-busy limit, without a server."""

from __future__ import annotations

import numpy as np

from flashml.inference.shadow import ShadowService, compare
from flashml.registry.alias_rules import Shadow


def test_compare_top_label_and_largest_difference():
    a = {"p": np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2]], np.float32)}
    assert compare(a, {"p": a["p"].copy()}) == (True, 0.0)
    agree, diff = compare(a, {"p": np.array([[0.2, 0.6, 0.2], [0.5, 0.3, 0.2]], np.float32)})
    assert agree and abs(diff - 0.1) < 1e-6
    agree, diff = compare(a, {"p": np.array([[0.8, 0.1, 0.1], [0.5, 0.3, 0.2]], np.float32)})
    assert not agree and abs(diff - 0.7) < 1e-6  # row 0's top label moved
    assert compare(a, {"p": np.zeros((2, 2), np.float32)}) == (False, None)  # another shape
    assert compare(a, {"q": a["p"]}) == (False, None)  # the output is missing
    assert compare({"s": np.array([[1.0]])}, {"s": np.array([[1.5]])}) == (False, 0.5)  # one value: must be equal
    assert compare({"t": np.array([b"x"], object)}, {"t": np.array([b"x"], object)}) == (True, None)


def test_a_share_is_mirrored_exactly_and_dropped_when_busy():
    service = ShadowService(pool=None, max_concurrency=0)  # type: ignore[arg-type] - never runs anything
    out = {"y": np.ones((1, 2))}
    shadow = Shadow(2, 30.0)
    for _ in range(10):
        service.offer("m", "production", shadow, {"x": np.ones((1, 2))}, ["y"], out, 0.001, 1)
    report = service.report("m", "production", shadow)
    assert report["mirrored"] == 3 and report["dropped"] == 3 and report["compared"] == 0  # 30 % of 10
    # The alias set again (even to the same shadow) starts from zero.
    assert service.report("m", "production", Shadow(2, 30.0))["mirrored"] == 0
