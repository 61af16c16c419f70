"""Fixtures of the stream tests: the session's application served over a real socket."""

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.live import serve_in_loop


@pytest.fixture(scope="session")
async def live_url(app: Any) -> AsyncIterator[str]:
    async with serve_in_loop(app) as url:
        yield url
