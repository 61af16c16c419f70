"""Secrets never reach the database: redaction of sensitive keys and a JSON depth limit.

A key is sensitive when one of the configured names appears in it as whole words, after
camelCase and dashes are turned into snake_case: with `token` listed, `access_token`,
`accessToken` and `X-Token` are redacted, `tokens_used` is not.

Secrets also hide in shapes a key list does not see, and are redacted too (unless
`REDACT_SECRETS_IN_TEXT=false`):
- name/value pairs, as header lists are logged: in `{"name": "Authorization", "value": "…"}`
  (also `key`/`header`/`field` for the name) the value is redacted when the name is sensitive;
- in every string (payload values, `error_message`, step details, `user_agent`): a URL's
  password (`https://user:[REDACTED]@host`), the value of a sensitive query parameter
  (`?token=[REDACTED]`), the value of a `key=value` or `key: value` pair whose key is
  sensitive (`password=[REDACTED]`, `"api_key": "[REDACTED]"`, `Authorization: [REDACTED]`),
  a bearer or basic credential (`Bearer [REDACTED]`) and a JWT.
"""

import re
from dataclasses import dataclass
from typing import Any

from app.core.config import Settings

REDACTED = "[REDACTED]"
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def _normalise(key: str) -> str:
    return "_" + _CAMEL.sub("_", key).lower().replace("-", "_").replace(" ", "_") + "_"


_CONTAINERS = (dict, list)
_VERDICTS_KEPT = 65536


_PAIR_NAMES = ("name", "key", "header", "field")
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@?#]*:)[^\s@/?#]+@")
_QUERY_VALUE = re.compile(r"([?&;]([A-Za-z0-9_.\-]+)=)([^&;#\s]+)")
# key=value or key: value in prose (the key optionally quoted, as JSON or logfmt write it); the
# value is a quoted string, or a run up to white space or a separator, with the scheme word of
# a credential (`Authorization: Bearer …`) taken with it
_PAIR = re.compile(
    r"""(?<![\w.\-])(["']?)([A-Za-z_][\w.\-]*)\1(\s*[:=]\s*)"""
    r"""(?:"([^"]*)"|'([^']*)'|((?i:(?:bearer|basic|token)\s+)?[^\s,;&'"]+))"""
)
_SCHEME_CREDENTIAL = re.compile(r"(?i)\b(bearer|basic|token)(\s+)[A-Za-z0-9._~+/=\-]{8,}")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*")


class Redactor:
    def __init__(self, sensitive_keys: frozenset[str], scrub_text: bool = True) -> None:
        self._scrub = scrub_text
        self._needles = tuple(f"_{_normalise(k).strip('_')}_" for k in sensitive_keys)
        # Payload keys repeat endlessly (email, id, status …): remember each verdict. Bounded,
        # so keys made of data (ids as keys) cannot grow it without limit.
        self._verdicts: dict[str, bool] = {}

    def is_sensitive(self, key: str) -> bool:
        verdict = self._verdicts.get(key)
        if verdict is None:
            normalised = _normalise(key)
            verdict = any(needle in normalised for needle in self._needles)
            if len(self._verdicts) >= _VERDICTS_KEPT:
                self._verdicts.clear()
            self._verdicts[key] = verdict
        return verdict

    def scrub(self, text: str) -> str:
        """`text` with credentials in URLs, sensitive pairs, bearer tokens and JWTs redacted
        (see the module)."""
        if not self._scrub:
            return text
        # cheap tests first: most strings hold none of these marks
        if "://" in text:
            text = _URL_PASSWORD.sub(lambda m: m.group(1) + REDACTED + "@", text)
        if "=" in text:
            text = _QUERY_VALUE.sub(self._query_value, text)
        if "=" in text or ":" in text:
            text = _PAIR.sub(self._pair_value, text)
        if "earer" in text or "asic" in text or "oken" in text or "BEARER" in text:
            text = _SCHEME_CREDENTIAL.sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)
        if "eyJ" in text:
            text = _JWT.sub(REDACTED, text)
        return text

    def _pair_value(self, match: re.Match[str]) -> str:
        quote, key, separator, double, single, _ = match.groups()
        if not self.is_sensitive(key.replace(".", "_")):  # db.password is a password
            return match.group()
        value = f'"{REDACTED}"' if double is not None else REDACTED
        value = f"'{REDACTED}'" if single is not None else value
        return f"{quote}{key}{quote}{separator}{value}"

    def _query_value(self, match: re.Match[str]) -> str:
        return match.group(1) + REDACTED if self.is_sensitive(match.group(2)) else match.group()

    def redact(self, value: Any, max_depth: int | None = None) -> Any:
        """A copy of `value` with every sensitive key's value replaced, at any depth.

        With `max_depth`, the depth limit is checked in the same walk: JsonTooDeep is raised
        when dicts/lists nest deeper than that (as `json_depth_exceeds` would say).
        """
        if isinstance(value, str):
            return self.scrub(value)
        if not isinstance(value, _CONTAINERS):
            return value
        return self._redact(value, max_depth)

    def _redact(self, value: dict[Any, Any] | list[Any], room: int | None) -> Any:
        """`redact` of a dict or a list (this runs for every container of every payload)."""
        if room is not None and room < 1:
            raise JsonTooDeep
        inner = None if room is None else room - 1
        if isinstance(value, list):
            return [
                self._redact(v, inner)
                if isinstance(v, _CONTAINERS)
                else (self.scrub(v) if isinstance(v, str) else v)
                for v in value
            ]
        redacted = {}
        for key, item in value.items():
            if self.is_sensitive(key if isinstance(key, str) else str(key)):
                # the secret is dropped unread, but its depth still counts
                if inner is not None and json_depth_exceeds(item, inner):
                    raise JsonTooDeep
                redacted[key] = REDACTED
            elif isinstance(item, _CONTAINERS):
                redacted[key] = self._redact(item, inner)
            elif isinstance(item, str):
                redacted[key] = self.scrub(item)
            else:
                redacted[key] = item
        if "value" in redacted and self._scrub and self._names_secret(value):
            redacted["value"] = REDACTED
        return redacted

    def _names_secret(self, pair: dict[Any, Any]) -> bool:
        """Whether a dict is a name/value pair whose name is sensitive (a logged header)."""
        for field in _PAIR_NAMES:
            name = pair.get(field)
            if isinstance(name, str) and self.is_sensitive(name):
                return True
        return False


class JsonTooDeep(ValueError):
    """A JSON value nests deeper than the limit given to `Redactor.redact`."""


def json_depth_exceeds(value: Any, max_depth: int) -> bool:
    """Whether `value` nests dicts/lists deeper than `max_depth` (a scalar has depth 0)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth + 1 > max_depth:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


@dataclass(frozen=True)
class PayloadRules:
    """What every write applies to the JSON it stores: the configured redaction and depth limit.

    Built once from the settings and passed to every writer (action rows, audit rows, the
    service's own audit rows), so that `REDACT_KEYS` and `MAX_JSON_DEPTH` apply everywhere.
    """

    redactor: Redactor
    max_json_depth: int

    @classmethod
    def from_settings(cls, settings: Settings) -> "PayloadRules":
        redactor = Redactor(settings.redact_key_set, settings.redact_secrets_in_text)
        return cls(redactor, settings.max_json_depth)
