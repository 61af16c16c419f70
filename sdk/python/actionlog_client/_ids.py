"""Client-generated action ids: UUIDv7 (RFC 9562), so ids sort by creation time.

The client picks an action's id before anything is sent. That is what makes delivery exactly
once (a retried batch carries the same ids, and the service stores an id once) and what lets
`start_action` return an id at once while the start is still queued.

Within one millisecond the 12-bit `rand_a` field counts up from a random start, so ids made by
one process are strictly increasing; `rand_b` keeps 62 random bits for uniqueness across
processes. The random bits come from `random` (initialised from the OS, and again in a forked
child by the standard library): ids need to be unique, not secret, and an `os.urandom` call
per id would be most of the cost of recording an event.
"""

import random
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def uuid7() -> uuid.UUID:
    return uuid.UUID(int=uuid7_int())


def uuid7_int() -> int:
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms > _last_ms:
            _last_ms = ms
            _counter = random.getrandbits(11)  # room to count up
        else:
            _counter += 1
            if _counter > 0xFFF:  # 4096 ids in one millisecond: borrow the next one
                _last_ms += 1
                _counter = 0
            ms = _last_ms
        rand_a = _counter
    rand_b = random.getrandbits(62)
    return (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b


def new_id() -> str:
    """`str(uuid7())`, without building the UUID object."""
    h = f"{uuid7_int():032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
