"""An RFC 9162 §2.1 verifier of the tests' own, sharing no code with the service or client.

Written from the RFC's definitions (MTH, PATH, PROOF) by recursion over the tree's shape, so
that a bug in the service's iterative algorithms cannot hide behind the same bug here.
"""

import base64
import hashlib
import json
from collections.abc import Sequence
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def _leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of the leaf data `leaves`."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return _leaf(leaves[0])
    k = _k(len(leaves))
    return _node(mth(leaves[:k]), mth(leaves[k:]))


def inclusion_holds(data: bytes, index: int, size: int, path: Sequence[str], root: str) -> bool:
    """Rebuild the root from the leaf and PATH(index, D[size]); path is leaf side first."""
    steps = [bytes.fromhex(p) for p in path]

    def climb(i: int, n: int) -> bytes:
        if n == 1:
            return _leaf(data)
        k = _k(n)
        below = climb(i, k) if i < k else climb(i - k, n - k)
        if not steps:
            raise ValueError("path too short")
        sibling = steps.pop(0)
        return _node(below, sibling) if i < k else _node(sibling, below)

    if not 0 <= index < size:
        return False
    try:
        found = climb(index, size)
    except ValueError:
        return False
    return not steps and found.hex() == root


def consistency_holds(
    first: int, second: int, proof: Sequence[str], first_root: str, second_root: str
) -> bool:
    """Rebuild both roots from PROOF(first, D[second]) (RFC 9162 §2.1.4.1's SUBPROOF)."""
    steps = [bytes.fromhex(p) for p in proof]
    old_root = bytes.fromhex(first_root)

    def sub(m: int, n: int, complete: bool) -> tuple[bytes, bytes]:
        if m == n:
            if complete:
                return old_root, old_root
            value = steps.pop(0)
            return value, value
        k = _k(n)
        if m <= k:
            old, new = sub(m, k, complete)
            return old, _node(new, steps.pop(0))
        old, new = sub(m - k, n - k, False)
        left = steps.pop(0)
        return _node(left, old), _node(left, new)

    if not 0 < first <= second:
        return False
    try:
        old, new = sub(first, second, True)
    except IndexError:
        return False
    return not steps and old.hex() == first_root and new.hex() == second_root


def head_signed(head: dict[str, Any], public_key_b64: str) -> bool:
    fields = {k: head[k] for k in ("key_id", "root_hash", "tenant_id", "timestamp", "tree_size")}
    message = (
        b"actionlog-tree-head-v1\n"
        + json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    )
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key_b64))
    try:
        key.verify(base64.b64decode(head["signature"]), message)
    except InvalidSignature:
        return False
    return True
