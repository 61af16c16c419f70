"""The cursor of a resource's audit trail: the chain sequence of the last row of a page.

A trail is read oldest first in chain order, so its pages are cut by `sequence`, which is
unique per tenant and never reused, rather than by time.
"""

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from app.core.errors import BadRequest


@dataclass(frozen=True)
class TrailCursor:
    sequence: int

    def encode(self) -> str:
        raw = json.dumps({"s": self.sequence}).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> "TrailCursor":
        try:
            data: Any = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            sequence = data["s"]
            if type(sequence) is not int or sequence < 0:
                raise ValueError("bad sequence")
            return cls(sequence=sequence)
        except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
            raise BadRequest(
                "cursor is malformed; pass the X-Next-Cursor of a previous page of this trail"
            ) from None
