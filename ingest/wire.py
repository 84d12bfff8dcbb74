"""Request decoding for the Segment HTTP Tracking API (SPEC 1.1): bytes in, messages out.

Pure functions of the request's parts; the route reads the body and calls them in order:
check_content_length, decode_body, parse_body, authenticate, messages_of.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from pydantic import SecretStr

from ingest.errors import (
    AuthError,
    MalformedBodyError,
    TooLargeError,
    UnsupportedEncodingError,
)
from journey.errors import ConfigError
from journey.schema import CHANNELS

_GZIP_MAGIC = b"\x1f\x8b"
_WBITS = {"gzip": 31, "x-gzip": 31, "deflate": 15}
_BATCH_LEVEL = ("context", "integrations")


def check_content_length(header: str | None, limit: int) -> None:
    """Refuse early a request that announces a body over the limit."""
    if header is not None and header.strip().isdigit() and int(header) > limit:
        raise TooLargeError(f"request body is {int(header)} bytes; the limit is {limit}",
                            limit=limit)


def decode_body(raw: bytes, content_encoding: str | None, limit: int) -> bytes:
    """Decompress by Content-Encoding alone (Content-Type is ignored); at most `limit` bytes out."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding not in _WBITS:
        raise UnsupportedEncodingError(f"Content-Encoding {encoding!r} is not supported; "
                                       "send gzip or no encoding", encoding=encoding)
    out = bytearray()
    data = raw
    # A gzip body may hold several members; a limit on the output stops decompression bombs.
    while data:
        inflater = zlib.decompressobj(_WBITS[encoding])
        try:
            out += inflater.decompress(data, limit + 1 - len(out))
        except zlib.error as exc:
            raise MalformedBodyError(f"body is not valid {encoding}: {exc}") from exc
        if len(out) > limit:
            raise TooLargeError(f"decompressed body is over the limit of {limit} bytes",
                                limit=limit)
        if not inflater.eof:
            raise MalformedBodyError(f"{encoding} body is truncated")
        data = inflater.unused_data
    return bytes(out)


def parse_body(data: bytes) -> dict[str, Any]:
    """The JSON object of a request body."""
    if data[:2] == _GZIP_MAGIC:
        raise MalformedBodyError("body looks gzip-compressed but has no Content-Encoding: gzip")
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise MalformedBodyError(f"malformed JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise MalformedBodyError("JSON body must be an object")
    return body


def key_name(key: str) -> str:
    """A stable, non-secret name for a write key (logs and dead letters never hold the key)."""
    return "wk_" + hashlib.sha256(key.encode()).hexdigest()[:10]


def split_write_key(entry: str) -> tuple[str, str | None]:
    """`KEY` or `KEY:CHANNEL` (SPEC 6.1): the key and the default channel of its events."""
    key, colon, channel = entry.rpartition(":")
    if not colon:
        return entry, None
    name = channel.strip().lower()
    if not key or name not in CHANNELS:
        raise ConfigError(f"write key entry ends in :{channel!r}, which is not a channel; "
                          f"use KEY or KEY:CHANNEL with CHANNEL one of {', '.join(CHANNELS)}")
    return key, name


def write_key_channels(write_keys: Sequence[SecretStr]) -> dict[str, str]:
    """Key name -> default channel of every `KEY:CHANNEL` entry; ConfigError on a bad entry."""
    found: dict[str, str] = {}
    for entry in write_keys:
        key, channel = split_write_key(entry.get_secret_value())
        if channel is not None:
            found[key_name(key)] = channel
    return found


def _basic_user(authorization: str) -> str:
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        raise AuthError("Authorization must be Basic with the write key as user name")
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise AuthError("Authorization Basic credentials are not valid base64") from exc
    # SDKs send base64("KEY:"); some send base64("KEY") without the colon.
    return decoded.partition(":")[0]


def authenticate(authorization: str | None, body: Mapping[str, Any],
                 write_keys: Sequence[SecretStr]) -> str:
    """The name of the write key sent by Basic auth or as `writeKey` in the body; else AuthError."""
    if authorization:
        candidate = _basic_user(authorization)
    else:
        given = body.get("writeKey")
        if given is None:
            raise AuthError("missing write key: send HTTP Basic auth or writeKey in the body")
        if not isinstance(given, str):
            raise AuthError("writeKey must be a string")
        candidate = given
    if not write_keys:
        raise AuthError("the collector has no write keys configured (set JOURNEY_WRITE_KEYS)")
    for entry in write_keys:
        secret = split_write_key(entry.get_secret_value())[0]
        if hmac.compare_digest(candidate.encode(), secret.encode()):
            return key_name(secret)
    raise AuthError("unknown write key")


def merge(base: Mapping[str, Any], own: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge of two JSON objects; the item's own values win."""
    merged = dict(base)
    for name, value in own.items():
        below = merged.get(name)
        if isinstance(below, Mapping) and isinstance(value, Mapping):
            merged[name] = merge(below, value)
        else:
            merged[name] = value
    return merged


def without_write_key(item: Any) -> Any:
    """The item as stored or dead-lettered: the write key is never kept."""
    if isinstance(item, dict) and "writeKey" in item:
        return {k: v for k, v in item.items() if k != "writeKey"}
    return item


def messages_of(body: Mapping[str, Any], path_type: str | None,
                max_batch: int) -> list[tuple[int | None, Any]]:
    """(size as sent, message) of each message: the batch's items, batch-level fields merged in.

    `path_type` is the endpoint's type (None for batch); the endpoint decides a single message's
    type, as Segment's does. Items are returned as sent when they are not objects, so that the
    caller can reject them one by one.
    """
    if path_type is not None:
        single = without_write_key(body)
        return [(event_size(single), {**single, "type": path_type})]
    items = body.get("batch")
    if not isinstance(items, list):
        raise MalformedBodyError("batch must be a list of messages")
    if len(items) > max_batch:
        raise TooLargeError(f"batch has {len(items)} events; the limit is {max_batch}",
                            limit=max_batch)
    shared: dict[str, Any] = {}
    for name in _BATCH_LEVEL:
        value = body.get(name)
        if value is not None and not isinstance(value, dict):
            raise MalformedBodyError(f"batch-level {name} must be an object")
        if value:
            shared[name] = value
    sent_at = body.get("sentAt")  # analytics-python and others stamp sentAt on the batch only
    out: list[tuple[int | None, Any]] = []
    for item in items:
        if not isinstance(item, dict):
            out.append((event_size(item), item))
            continue
        merged = without_write_key(item)
        size = event_size(merged)
        for name, value in shared.items():
            own = merged.get(name)
            if own is None or isinstance(own, Mapping):
                merged = {**merged, name: merge(value, own or {})}
        if sent_at is not None and "sentAt" not in merged:
            merged = {**merged, "sentAt": sent_at}
        out.append((size, merged))
    return out


def event_size(item: Any) -> int | None:
    """Bytes of one message as JSON (the per-event limit's measure); None if too deep to encode."""
    try:
        return len(orjson.dumps(item))
    except orjson.JSONEncodeError:
        return None
