"""RFC 9162 §2.1 Merkle tree hashing over a tenant's audit events, on stored subtree hashes.

The leaves are a tenant's audit events in `sequence` order (leaf index = sequence - 1), and
a leaf's data is the 32 raw bytes of the event's chain `hash`. As in Certificate Transparency
v2, a leaf hashes as SHA-256(0x00 ‖ data) and an inner node as SHA-256(0x01 ‖ left ‖ right).

What is stored (`audit_merkle_nodes`) is every *perfect* subtree: node (level k, position p)
is the hash of leaves [p·2^k, (p+1)·2^k). Each appended leaf adds itself and the perfect
subtrees it completes (two rows per leaf on average), computed from the tree's frontier, the
O(log n) perfect subtrees still waiting for a right sibling. Every range that RFC 9162's
proofs hash starts at a multiple of a power of two at least as large as the range, so it is a
short list of stored perfect subtrees: a proof reads O(log n) rows, never the events, and so
outlives the retention that deletes them.

The proof functions run twice: once with a recording lookup, to learn which nodes they need
(`needed_nodes`), then with those nodes read in one query.
"""

import hashlib
from collections.abc import Callable, Iterable

NodeKey = tuple[int, int]  # (level, position)
Lookup = Callable[[NodeKey], bytes]

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def frontier_keys(size: int, adding: int | None = None) -> list[NodeKey]:
    """The perfect subtrees of a tree of `size` leaves that still wait for a right sibling;
    with `adding`, only those that appending that many leaves completes (all `append_leaves`
    reads: none at all for one leaf appended to a tree of even size)."""
    end = size + adding if adding is not None else None
    return [
        (level, (size >> level) - 1)
        for level in range(size.bit_length())
        if size >> level & 1 and (end is None or ((size >> (level + 1)) + 1) << (level + 1) <= end)
    ]


def append_leaves(
    frontier: dict[int, bytes], size: int, leaves: Iterable[bytes]
) -> list[tuple[int, int, bytes]]:
    """The (level, position, hash) rows that appending `leaves` (leaf hashes) adds to a tree of
    `size` leaves; `frontier` (level -> hash, from `frontier_keys`) is updated in place."""
    added = []
    for leaf in leaves:
        level, position, value = 0, size, leaf
        added.append((level, position, value))
        while position & 1:
            value = node_hash(frontier.pop(level), value)
            level, position = level + 1, position >> 1
            added.append((level, position, value))
        frontier[level] = value
        size += 1
    return added


def _split(width: int) -> int:
    """The largest power of two below `width` (width >= 2)."""
    return 1 << ((width - 1).bit_length() - 1)


def subtree_root(lookup: Lookup, start: int, end: int) -> bytes:
    """MTH(D[start:end]) for a range that RFC 9162's recursion produces."""
    width = end - start
    if width & (width - 1) == 0:  # a perfect, aligned subtree: stored
        return lookup((width.bit_length() - 1, start // width))
    k = _split(width)
    return node_hash(
        lookup(((k.bit_length() - 1), start // k)), subtree_root(lookup, start + k, end)
    )


def root(lookup: Lookup, size: int) -> bytes:
    return subtree_root(lookup, 0, size) if size else EMPTY_ROOT


def inclusion_path(lookup: Lookup, index: int, size: int) -> list[bytes]:
    """PATH(index, D[0:size]) of RFC 9162 §2.1.3.1, leaf side first."""
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            path.append(subtree_root(lookup, start + k, end))
            end = start + k
        else:
            path.append(subtree_root(lookup, start, start + k))
            start += k
    path.reverse()
    return path


def consistency_proof(lookup: Lookup, first: int, second: int) -> list[bytes]:
    """PROOF(first, D[0:second]) of RFC 9162 §2.1.4.1 (empty when first == second)."""
    proof: list[bytes] = []
    start, end, complete = 0, second, True
    m = first
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            proof.append(subtree_root(lookup, start + k, end))
            end = start + k
        else:
            proof.append(subtree_root(lookup, start, start + k))
            start, m, complete = start + k, m - k, False
    if not complete:
        proof.append(subtree_root(lookup, start, end))
    proof.reverse()
    return proof


def needed_nodes(compute: Callable[[Lookup], object]) -> set[NodeKey]:
    """The stored nodes that `compute` reads."""
    keys: set[NodeKey] = set()

    def record(key: NodeKey) -> bytes:
        keys.add(key)
        return bytes(32)

    compute(record)
    return keys
