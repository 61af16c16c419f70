"""Client-generated action ids: UUIDv7 (RFC 9562), so ids sort by creation time.

The client picks an action's id before anything is sent. That is what makes delivery exactly
once (a retried batch carries the same ids, and the service stores an id once) and what lets
`start_action` return an id at once while the start is still queued.

Within one millisecond the 12-bit `rand_a` field counts up from a random start, so ids made by
one process are strictly increasing; `rand_b` keeps 62 random bits for uniqueness across
processes.
"""

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def uuid7() -> uuid.UUID:
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms > _last_ms:
            _last_ms = ms
            _counter = int.from_bytes(os.urandom(2), "big") & 0x7FF  # room to count up
        else:
            _counter += 1
            if _counter > 0xFFF:  # 4096 ids in one millisecond: borrow the next one
                _last_ms += 1
                _counter = 0
            ms = _last_ms
        rand_a = _counter
    rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    return uuid.UUID(int=value)


def new_id() -> str:
    return str(uuid7())
