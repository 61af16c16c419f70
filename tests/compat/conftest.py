"""The compatibility tests record their data through the action API, with its fixtures."""

from tests.actions.conftest import record, record_many

__all__ = ["record", "record_many"]
