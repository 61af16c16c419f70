"""Reading an OTLP/HTTP request body: its encoding, its compression and its message.

Both encodings of the specification are read: binary protobuf (`application/x-protobuf`),
decoded by the official `opentelemetry-proto` messages, and JSON (`application/json`), the
protobuf JSON mapping with OTLP's two exceptions — trace and span ids are hex strings, not
base64, and enum values may be integers — with unknown fields ignored, as receivers must.
`Content-Encoding: gzip` is inflated first, never beyond the size limit (a small compressed
body can hold gigabytes of zeros). A body that cannot be read is a 400 saying why.
"""

import base64
import binascii
import json
import zlib
from typing import Any, ClassVar, Literal, TypeVar

from google.protobuf.json_format import MessageToJson, ParseDict, ParseError
from google.protobuf.message import DecodeError, Message

from app.core.errors import BadRequest, PayloadTooLarge, ServiceError

Encoding = Literal["protobuf", "json"]
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_ID_FIELDS = frozenset({"traceId", "spanId", "parentSpanId", "trace_id", "span_id",
                        "parent_span_id"})  # fmt: skip
M = TypeVar("M", bound=Message)


class UnsupportedMediaType(ServiceError):
    status_code = 415
    default_detail = f"Content-Type must be {PROTOBUF} or {JSON}"
    headers: ClassVar[dict[str, str] | None] = None


def encoding_of(content_type: str | None) -> Encoding:
    """The encoding a Content-Type names; 415 for any other."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type == PROTOBUF:
        return "protobuf"
    if media_type == JSON:
        return "json"
    raise UnsupportedMediaType()


def inflate(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    """The body without its Content-Encoding (none or gzip); 413 when it inflates past `limit`."""
    coding = (content_encoding or "identity").strip().lower()
    if coding == "identity":
        return body
    if coding != "gzip":
        raise UnsupportedMediaType(f"Content-Encoding {coding} is not supported (use gzip)")
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise BadRequest(f"body is not valid gzip: {exc}") from None
    if len(data) > limit:
        raise PayloadTooLarge(f"Request body exceeds the limit of {limit} bytes once inflated")
    if not inflater.eof:
        raise BadRequest("body is not valid gzip: the stream is truncated")
    return data


def _ids_as_base64(value: Any) -> Any:
    """The OTLP JSON document with its hex trace and span ids in protobuf's base64."""
    if isinstance(value, list):
        return [_ids_as_base64(item) for item in value]
    if not isinstance(value, dict):
        return value
    converted = {}
    for key, item in value.items():
        if key in _ID_FIELDS and isinstance(item, str):
            try:
                item = base64.b64encode(bytes.fromhex(item)).decode()
            except ValueError:
                raise BadRequest(f"{key} must be hex digits, got {item[:64]!r}") from None
        converted[key] = _ids_as_base64(item)
    return converted


def _ids_as_hex(value: Any) -> Any:
    if isinstance(value, list):
        return [_ids_as_hex(item) for item in value]
    if not isinstance(value, dict):
        return value
    return {
        key: base64.b64decode(item).hex()
        if key in _ID_FIELDS and isinstance(item, str)
        else _ids_as_hex(item)
        for key, item in value.items()
    }


def decode(message: type[M], body: bytes, encoding: Encoding) -> M:
    """The request message of `body`; 400 naming what is wrong when it cannot be read."""
    try:
        if encoding == "protobuf":
            return message.FromString(body)
        document = json.loads(body)
        if not isinstance(document, dict):
            raise BadRequest("body must be a JSON object")
        return ParseDict(_ids_as_base64(document), message(), ignore_unknown_fields=True)
    except (DecodeError, RecursionError) as exc:
        raise BadRequest(f"body is not a valid {message.DESCRIPTOR.name}: {exc}") from None
    except (ParseError, ValueError, binascii.Error) as exc:  # JSON errors are ValueErrors
        raise BadRequest(f"body is not a valid {message.DESCRIPTOR.name}: {exc}") from None


def encode(message: Message, encoding: Encoding) -> bytes:
    """A response message in the request's encoding (JSON: OTLP's hex ids, camelCase)."""
    if encoding == "protobuf":
        return bytes(message.SerializeToString())
    document = json.loads(MessageToJson(message))
    return json.dumps(_ids_as_hex(document), separators=(",", ":")).encode()
