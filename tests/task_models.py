"""Moved to tests/helpers/task_models.py. This name stays only because tests/security/ still imports it
(the layout test allows that and nothing else); drop it once tests/security/ imports tests.helpers.task_models."""

from tests.helpers.task_models import *  # noqa: F403
