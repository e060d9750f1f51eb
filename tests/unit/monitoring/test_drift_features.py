"""Which features drift is scored on, from logged predictions kept whole, redacted or summarised."""

from __future__ import annotations

import numpy as np
import pytest

from flashml.errors import BadRequestError
from flashml.monitoring import prediction_log_codec as codec
from flashml.monitoring.drift_config import DriftConfig
from flashml.monitoring.drift_features import compare, slim
from flashml.monitoring.prediction_log_records import LogConfig, LoggedPrediction
from flashml.records import parse_body
from flashml.registry.requests import DriftChange

rng = np.random.default_rng(11)


def _logged(x: np.ndarray, y: np.ndarray, config: LogConfig) -> LoggedPrediction:
    """A prediction as the log writes and reads it back (the real codec: what drift sees in production)."""
    return codec.decode(codec.encode(1.0, 1, None, {"x": x, "words": np.array([b"a"] * len(x), dtype=object)},
                                     {"probabilities": y}, config))


def _window(shift: float, config: LogConfig, requests: int = 200, rows: int = 4) -> list[LoggedPrediction]:
    out = []
    for _ in range(requests):
        x = rng.normal(0, 1, (rows, 3)).astype(np.float32)
        x[:, 1] += shift
        scores = np.stack([x[:, 1], -x[:, 1], np.zeros(rows)], axis=1).astype(np.float32)  # class 0 when x[1] > 0
        out.append(_logged(x, scores, config))
    return out


@pytest.mark.parametrize("config", [LogConfig(enabled=True), LogConfig(enabled=True, redact_inputs=True),
                                    LogConfig(enabled=True, mode="summary")], ids=["full", "redacted", "summary"])
def test_a_shifted_column_drifts_and_the_others_do_not(config):
    # 600 requests a window: PSI's noise between two samples of one distribution is about
    # (bins - 1) * (1 / n + 1 / m), here 9 * 2 / 600 = 0.03 when only each request's means are kept
    drifts = compare(_window(0.0, config, 600), _window(1.5, config, 600))
    assert set(drifts) == {"x[0]", "x[1]", "x[2]", "output"}  # strings are no feature
    assert drifts["x[1]"].score > 0.5 and drifts["x[1]"].kind == "numeric"
    assert drifts["x[0]"].score < 0.12 and drifts["x[2]"].score < 0.12
    # the classifier now predicts class 0 far more often: its class shares moved
    assert drifts["output"].kind == "classes" and drifts["output"].score > 0.2


def test_raw_inputs_give_one_value_per_row_and_redacted_ones_one_mean_per_request():
    full, redacted = _window(0.0, LogConfig(enabled=True), 50, 4), _window(0.0, LogConfig(enabled=True,
                                                                                           redact_inputs=True), 50, 4)
    assert compare(full, full)["x[0]"].reference_n == 200
    assert compare(redacted, redacted)["x[0]"].reference_n == 50
    # one redacted prediction in either window: both are read by their means, like with like
    assert compare(full, [*full[:-1], redacted[0]])["x[0]"].reference_n == 50


def test_a_regression_output_is_a_number():
    config = LogConfig(enabled=True)
    reference = [codec.decode(codec.encode(1.0, 1, None, {"x": np.ones((2, 1), np.float32)},
                                           {"y": rng.normal(0, 1, (2, 1)).astype(np.float32)}, config))
                 for _ in range(100)]
    drift = compare(reference, reference)["output"]
    assert drift.kind == "numeric" and drift.score == 0.0


def test_settings_keep_what_a_change_leaves_out_and_refuse_what_does_not_fit():
    config = DriftConfig().changed(parse_body({"enabled": True, "threshold": 0.3}, DriftChange))
    assert (config.enabled, config.threshold, config.reference_size) == (True, 0.3, 500)
    assert config.changed(parse_body({"window_size": 50, "min_predictions": 20}, DriftChange)).threshold == 0.3
    for change, field in [({"reference": "dataset"}, "drift.reference_dataset"),
                          ({"window_size": 50}, "drift.min_predictions"),
                          ({"reference_dataset": "abc"}, "drift.reference")]:
        with pytest.raises(BadRequestError) as err:
            config.changed(parse_body(change, DriftChange))
        assert err.value.code == "bad_drift_config" and err.value.details == {"field": field}
    assert DriftConfig.from_dict({"enabled": True, "from_a_newer_flashml": 1}) == DriftConfig(enabled=True)


def test_a_kept_reference_holds_only_what_is_read_and_scores_the_same():
    config = LogConfig(enabled=True)
    logged = [codec.decode(codec.encode(1.0, 1, None,
                                        {"x": rng.normal(0, 1, (3, 2)).astype(np.float32),
                                         "image": np.zeros((3, 3, 32, 32), np.float32),
                                         "ids": np.zeros((3, 128), np.int64)},
                                        {"scores": rng.normal(0, 1, (3, 1000)).astype(np.float32),
                                         "mask": np.zeros((3, 8, 8), np.float32)}, config)) for _ in range(50)]
    kept = slim(logged)
    assert set(kept[0].inputs) == {"x"} and set(kept[0].outputs) == {"scores"}
    assert set(kept[0].output_summary) == {"scores", "mask"}  # small, and they name the outputs
    assert compare(kept, kept[:25]) == compare(logged, logged[:25])
    assert set(compare(kept, kept)) == {"x[0]", "x[1]", "output:scores"}  # the mask is no feature in any form
