"""Background loops that stop when they are told to.

A loop that outlives a failing step catches `Exception` around it. When the loop is cancelled
(at shutdown) while the step holds a database connection, the driver's clean-up may raise in
place of the `CancelledError` (SQLAlchemy reports the interrupted transaction), and the loop
would catch that and go on for ever, holding up the shutdown. `stopping()` tells such a
handler that its task has been asked to stop, whatever the step raised instead.
"""

import asyncio


def stopping() -> bool:
    """Whether the current task has a cancellation pending (it must end, not retry)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
