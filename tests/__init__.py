import pytest

# Shared helpers' asserts (run_job's status check, until's deadline) explain a failure the way a test's do.
pytest.register_assert_rewrite("tests.helpers")
