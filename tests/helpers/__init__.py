"""Helpers that several test modules share; a test module imports them from here, never from another test module.
Their asserts are rewritten like a test's (tests/__init__.py registers them)."""
