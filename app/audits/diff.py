"""The field-level diff of an audit row: what changed between `before` and `after`.

Objects are compared key by key, and a nested field is named by its dotted path
(`address.city`; keys are joined as they are, so a key that holds a dot reads like a nested
path). Each entry has a `kind`: `added` (only in `after`), `removed` (only in
`before`) or `changed`, with the `old` and `new` values (null on the side that is absent).

A list is one value: when any element differs, one `changed` entry holds the whole old and
new list at the list's path. Positions in a list are not identities; an element-by-element
diff would report every element after an insertion as changed, which reads as more change
than there was.

Values are compared as JSON: `1` equals `1.0`, but `true` does not equal `1`. The diff is
computed on the values as given, so a changed secret shows up as a change, but its values
are written as `[REDACTED]`.
"""

from typing import Any, Literal

from app.core.redact import REDACTED, Redactor

DiffKind = Literal["added", "removed", "changed"]


def json_equal(a: Any, b: Any) -> bool:
    """Whether two JSON values are equal as JSON (booleans are not numbers)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b


class _Differ:
    def __init__(self, redactor: Redactor | None) -> None:
        self.redactor = redactor
        self.entries: list[dict[str, Any]] = []

    def _value(self, value: Any, secret: bool) -> Any:
        if secret:
            return REDACTED
        return self.redactor.redact(value) if self.redactor else value

    def _add(self, path: str, kind: DiffKind, old: Any, new: Any, secret: bool) -> None:
        old = None if kind == "added" else self._value(old, secret)
        new = None if kind == "removed" else self._value(new, secret)
        self.entries.append({"path": path, "kind": kind, "old": old, "new": new})

    def walk(self, before: dict[str, Any], after: dict[str, Any], prefix: str) -> None:
        for key in sorted(before.keys() | after.keys()):
            path = f"{prefix}{key}"
            secret = self.redactor is not None and self.redactor.is_sensitive(key)
            if key not in after:
                self._add(path, "removed", before[key], None, secret)
            elif key not in before:
                self._add(path, "added", None, after[key], secret)
            elif isinstance(before[key], dict) and isinstance(after[key], dict) and not secret:
                self.walk(before[key], after[key], f"{path}.")
            elif not json_equal(before[key], after[key]):
                self._add(path, "changed", before[key], after[key], secret)


def compute_diff(
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    redactor: Redactor | None = None,
) -> list[dict[str, Any]]:
    """The changes from `before` to `after`, in key order; a missing side counts as `{}`."""
    differ = _Differ(redactor)
    differ.walk(before or {}, after or {}, "")
    return differ.entries
