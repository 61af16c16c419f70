"""The field-level diff and the canonical JSON of the chain, as pure functions."""

import json
from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID

import pytest

from app.audits.chain import GENESIS_HASH, canonical_json, row_hash
from app.audits.diff import compute_diff, json_equal
from app.core.redact import REDACTED, Redactor


def entry(path: str, kind: str, old: object = None, new: object = None) -> dict[str, object]:
    return {"path": path, "kind": kind, "old": old, "new": new}


class TestDiff:
    def test_flat_changes_additions_and_removals(self) -> None:
        before = {"name": "Ada", "email": "ada@example.org", "phone": "1"}
        after = {"name": "Ada L.", "email": "ada@example.org", "city": "London"}
        assert compute_diff(before, after) == [
            entry("city", "added", new="London"),
            entry("name", "changed", "Ada", "Ada L."),
            entry("phone", "removed", old="1"),
        ]

    def test_nested_fields_are_dotted_paths(self) -> None:
        before = {"address": {"city": "Paris", "geo": {"lat": 48.8, "lon": 2.3}}, "x": 1}
        after = {"address": {"city": "Lyon", "geo": {"lat": 45.7, "lon": 2.3}, "zip": "69001"}}
        assert compute_diff(before, after) == [
            entry("address.city", "changed", "Paris", "Lyon"),
            entry("address.geo.lat", "changed", 48.8, 45.7),
            entry("address.zip", "added", new="69001"),
            entry("x", "removed", old=1),
        ]

    def test_a_list_is_one_value(self) -> None:
        before = {"tags": ["a", "b"], "items": [{"sku": "x", "qty": 1}], "same": [1, [2]]}
        after = {"tags": ["b", "a", "c"], "items": [{"sku": "x", "qty": 2}], "same": [1, [2]]}
        assert compute_diff(before, after) == [
            entry("items", "changed", [{"sku": "x", "qty": 1}], [{"sku": "x", "qty": 2}]),
            entry("tags", "changed", ["a", "b"], ["b", "a", "c"]),
        ]

    def test_type_changes_are_whole_value_changes(self) -> None:
        before = {"a": {"b": 1}, "c": [1], "d": None}
        after = {"a": "flat", "c": {"0": 1}, "d": 0}
        assert compute_diff(before, after) == [
            entry("a", "changed", {"b": 1}, "flat"),
            entry("c", "changed", [1], {"0": 1}),
            entry("d", "changed", None, 0),
        ]

    def test_create_and_delete_are_all_added_or_removed(self) -> None:
        data = {"name": "Ada", "address": {"city": "Paris"}}
        assert compute_diff(None, data) == [
            entry("address", "added", new={"city": "Paris"}),
            entry("name", "added", new="Ada"),
        ]
        assert [e["kind"] for e in compute_diff(data, None)] == ["removed", "removed"]

    def test_json_equality(self) -> None:
        assert json_equal({"a": 1}, {"a": 1.0})
        assert not json_equal({"a": 1}, {"a": True})
        assert not json_equal({"a": 0}, {"a": False})
        assert not json_equal({"a": None}, {})
        assert not json_equal([1, 2], [2, 1])
        assert compute_diff({"flag": 1}, {"flag": True}) == [entry("flag", "changed", 1, True)]

    def test_secrets_show_as_changed_but_redacted(self) -> None:
        redactor = Redactor(frozenset({"password", "token"}))
        before = {"password": "old", "profile": {"name": "a", "token": "t1"}, "x": 1}
        after = {"password": "new", "profile": {"name": "b", "token": "t1"}, "x": {"token": "t"}}
        assert compute_diff(before, after, redactor) == [
            entry("password", "changed", REDACTED, REDACTED),
            entry("profile.name", "changed", "a", "b"),
            entry("x", "changed", 1, {"token": REDACTED}),
        ]


class TestCanonicalJson:
    def test_sorted_compact_ascii(self) -> None:
        value = {"b": [1, "é", None, True], "a": {"z": 0, "y": "x"}}
        assert canonical_json(value) == '{"a":{"y":"x","z":0},"b":[1,"\\u00e9",null,true]}'

    @pytest.mark.parametrize(
        ("number", "spelling"),
        [
            (0, "0"),
            (-0.0, "0"),
            (1, "1"),
            (1.0, "1"),
            (100, "1e2"),
            (1e20, "1e20"),
            (100000000000000000000, "1e20"),
            (1.5, "15e-1"),
            (-0.25, "-25e-2"),
            (1.5e-07, "15e-8"),
            (10**30 + 1, "1000000000000000000000000000001"),
        ],
    )
    def test_numbers_hash_by_value_not_spelling(self, number: float, spelling: str) -> None:
        assert canonical_json(number) == spelling
        assert canonical_json(json.loads(json.dumps(number))) == spelling

    def test_ids_and_timestamps(self) -> None:
        moment = datetime(2024, 1, 15, 11, 30, tzinfo=timezone(timedelta(hours=1)))
        uid = UUID("01a20908-4a92-764a-bd21-056688a03801")
        assert canonical_json([moment, uid]) == (
            '["2024-01-15T10:30:00.000000Z","01a20908-4a92-764a-bd21-056688a03801"]'
        )

    def test_non_finite_numbers_are_refused(self) -> None:
        with pytest.raises(ValueError):
            canonical_json(float("nan"))

    def test_row_hash_chains_on_the_previous_hash(self) -> None:
        content = {
            "id": UUID(int=1),
            "tenant_id": UUID(int=2),
            "sequence": 1,
            "action": "create",
            "resource_type": "contact",
            "resource_id": "1",
            "user_id": None,
            "changes": {"before": None, "after": {"a": 1}, "diff": []},
            "ip_address": None,
            "user_agent": None,
            "metadata": {},
            "created_at": datetime(2024, 1, 1, tzinfo=UTC),
            "ignored": "not hashed",
        }
        first = row_hash(GENESIS_HASH, content)
        assert len(first) == 64
        assert row_hash(GENESIS_HASH, {**content, "ignored": "x"}) == first
        assert row_hash("1" * 64, content) != first
        assert row_hash(GENESIS_HASH, {**content, "user_id": "mallory"}) != first
