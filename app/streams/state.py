"""What the live stream keeps in the application's state (app/core/state.py)."""

from dataclasses import dataclass
from typing import Any

from app.core.state import CoreState
from app.streams.hub import StreamHub
from app.streams.retention import StreamPruner


@dataclass(kw_only=True, eq=False)
class StreamsState(CoreState):
    stream_hub: StreamHub
    stream_pruner: StreamPruner


def streams_state(app: Any) -> StreamsState:
    state = app.state
    assert isinstance(state, StreamsState), "the application is built by create_app"
    return state
