"""Moved to tests/helpers/onnx_models.py. This name stays only because tests/security/ still imports it
(the layout test allows that and nothing else); drop it once tests/security/ imports tests.helpers.onnx_models."""

from tests.helpers.onnx_models import *  # noqa: F403
