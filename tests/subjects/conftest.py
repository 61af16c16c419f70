"""Fixtures of the erasure tests: the retention tests' app with its own archive directory."""

from tests.retention.conftest import retained

__all__ = ["retained"]
