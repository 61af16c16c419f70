"""The `s3` destination: one object per kind in each batch, on any S3-compatible store.

Objects are keyed `{prefix}{kind}/{YYYY}/{MM}/{DD}/{first}-{last}.{ext}`: the date of the
first record, the first and last stream ids of its records in the batch. A failed batch is
retried as the same batch, so a retry rewrites the same object rather than adding one.
Formats: `ndjson` (gzipped, one record per line, `.ndjson.gz`) or `parquet` (`.parquet`:
columns `stream_id`, `kind`, `record_id`, `created_at` and `record`, the record's JSON).

The client is boto3, run in a thread: a batch is one request of up to hundreds of records,
so handing it to a thread costs nothing next to the upload, and boto3 has no async variant
of its own (aiobotocore pins exact botocore releases, which fights every boto3 upgrade).
Its own retries are off: the sender's backoff, the same for every type, decides.
"""

import asyncio
import gzip
import io
from collections.abc import Sequence
from typing import Any

import orjson

from app.alerts.targets import UnsafeTarget, check_target
from app.destinations.transports import Outcome, Record, http_outcome


def object_key(prefix: str, kind: str, records: Sequence[Record], ext: str) -> str:
    day = records[0].created_at
    return f"{prefix}{kind}/{day:%Y/%m/%d}/{records[0].seq}-{records[-1].seq}.{ext}"


def ndjson_gz(records: Sequence[Record]) -> bytes:
    text = "".join(record.json() + "\n" for record in records)
    return gzip.compress(text.encode(), compresslevel=6, mtime=0)


def parquet(records: Sequence[Record]) -> bytes:
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    table = pa.table(
        {
            "stream_id": pa.array([r.seq for r in records], pa.int64()),
            "kind": pa.array([r.kind for r in records], pa.string()),
            "record_id": pa.array([_record_id(r) for r in records], pa.string()),
            "created_at": pa.array([r.created_at for r in records], pa.timestamp("us", "UTC")),
            "record": pa.array([r.json() for r in records], pa.string()),
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _record_id(record: Record) -> str | None:
    value = orjson.loads(record.payload).get("id")
    return None if value is None else str(value)


class S3:
    def __init__(self, config: dict[str, Any], timeout: float, allow_private: bool) -> None:
        self.config = config
        self.timeout = timeout
        self.allow_private = allow_private
        self.format = config.get("format", "ndjson")
        self._client: Any = None

    def _s3(self) -> Any:
        if self._client is None:
            import boto3  # type: ignore[import-untyped]
            from botocore.config import Config  # type: ignore[import-untyped]

            self._client = boto3.session.Session().client(
                "s3",
                endpoint_url=self.config.get("endpoint_url"),
                region_name=self.config["region"],
                aws_access_key_id=self.config["access_key_id"],
                aws_secret_access_key=self.config["secret_access_key"],
                config=Config(
                    connect_timeout=self.timeout,
                    read_timeout=self.timeout,
                    retries={"max_attempts": 1, "mode": "standard"},
                ),
            )
        return self._client

    def _put_all(self, records: Sequence[Record]) -> list[str]:
        keys = []
        for kind in dict.fromkeys(record.kind for record in records):
            mine = [record for record in records if record.kind == kind]
            if not mine:
                continue
            if self.format == "parquet":
                body, ext, extra = parquet(mine), "parquet", {}
            else:
                body, ext = ndjson_gz(mine), "ndjson.gz"
                extra = {"ContentType": "application/x-ndjson", "ContentEncoding": "gzip"}
            key = object_key(self.config.get("prefix") or "", kind, mine, ext)
            self._s3().put_object(Bucket=self.config["bucket"], Key=key, Body=body, **extra)
            keys.append(key)
        return keys

    async def send(self, records: Sequence[Record]) -> Outcome:
        from botocore.exceptions import (  # type: ignore[import-untyped]
            BotoCoreError,
            ClientError,
        )

        if endpoint := self.config.get("endpoint_url"):
            try:
                await check_target(endpoint, self.allow_private)
            except UnsafeTarget as exc:
                return Outcome(False, error=str(exc), permanent=True)
        try:
            keys = await asyncio.to_thread(self._put_all, records)
        except ClientError as exc:
            meta = exc.response.get("ResponseMetadata", {})
            status = int(meta.get("HTTPStatusCode") or 500)
            retry_after = (meta.get("HTTPHeaders") or {}).get("retry-after")
            return http_outcome(status, str(exc), retry_after)
        except BotoCoreError as exc:
            return Outcome(False, error=f"{type(exc).__name__}: {exc}"[:1024])
        return Outcome(True, 200, response=", ".join(keys)[:1000])

    async def close(self) -> None:
        return None
