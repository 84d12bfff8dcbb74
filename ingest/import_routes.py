"""Bulk and operator routes of the collector: POST /v1/imports and the dead-letter endpoints.

/v1/imports takes a call-centre, store or Segment export (write-key auth, like every write).
/v1/deadletters and /v1/deadletters/replay take an admin API token (`Authorization: Bearer TOKEN`):
dead letters hold other senders' events and personal data, and write keys ship in web pages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import SecretStr

from ingest import imports
from ingest.errors import AuthError, InvalidEventError, MalformedBodyError, ScopeError
from ingest.normalize import parse_time
from ingest.ratelimit import RateLimiter
from ingest.replay import list_letters, replay
from ingest.routes import Collector
from ingest.settings import IngestSettings
from ingest.webhooks import guarded, store_mapped, write_key
from ingest.wire import decode_body
from journey.csvout import CSV, flatten, render, wants_csv
from journey.deadletter import DeadLetterStore
from journey.log.base import LogProducer
from journey.tokens import TokenSet

_DEFAULT_FORMAT = {"call": "csv", "store": "csv", "events": "jsonl"}


def bearer(authorization: str | None, tokens: TokenSet) -> str:
    """The name of an admin API token sent as `Bearer TOKEN`; else AuthError or ScopeError."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("send an API token: Authorization: Bearer TOKEN")
    grant = tokens.grant(token.strip())
    if grant is None:
        raise AuthError("unknown API token")
    if "admin" not in grant.scopes:  # SPEC 6.1: dead letters hold other senders' personal data
        raise ScopeError("this token lacks the 'admin' scope dead letters need", scope="admin")
    return grant.name


def import_router(settings: IngestSettings, producer: LogProducer, clock: Callable[[], datetime],
                  limiter: RateLimiter | None = None) -> APIRouter:
    """POST /v1/imports?kind=call|store|events&format=csv|jsonl&mapping=col=field,..."""
    limiter = limiter or RateLimiter.from_settings(settings)
    letters = settings.data_dir / "deadletter"
    collector = Collector(settings, producer, DeadLetterStore(letters))
    unmappable = DeadLetterStore(letters, stage="import")
    router = APIRouter(tags=["collector"])

    @router.post("/v1/imports", summary="Import a call-centre, store or Segment export",
                 response_model=None)
    async def receive(request: Request, kind: str, format: str | None = None,
                      mapping: str | None = None) -> JSONResponse:
        def handle(raw: bytes) -> tuple[int, dict[str, Any]]:
            key = write_key(request, settings)
            limiter.check(key)
            data = decode_body(raw, request.headers.get("content-encoding"),
                               settings.max_bulk_bytes)
            fmt = format or _DEFAULT_FORMAT.get(kind, "csv")
            items = imports.import_items(data, kind, fmt, imports.parse_mapping(mapping))
            stored, rejected = store_mapped(collector, unmappable, items, key, clock())
            payload: dict[str, Any] = {
                "imported": stored, "rejected": [{"line": n, "reason": r} for n, r in rejected]}
            if rejected and not stored:
                return 400, {"error": "every row was rejected", **payload}
            return 200, payload

        return await guarded(request, settings.max_bulk_bytes, handle, settings.retry_after_s)

    return router


# The CSV header of an empty dead-letter listing (otherwise: the keys of its letters).
DEAD_COLUMNS = ["id", "replayed", "received_at", "write_key", "reason", "index", "event", "stage",
                "partition", "offset"]


def deadletter_router(settings: IngestSettings, producer: LogProducer,
                      clock: Callable[[], datetime], tokens: Sequence[SecretStr],
                      limiter: RateLimiter | None = None) -> APIRouter:
    """GET /v1/deadletters and POST /v1/deadletters/replay, behind API tokens."""
    limiter = limiter or RateLimiter.from_settings(settings)
    directory = settings.data_dir / "deadletter"
    collector = Collector(settings, producer, DeadLetterStore(directory))
    admins = TokenSet(tokens)
    router = APIRouter(tags=["collector"])

    @router.get("/v1/deadletters", summary="Newest dead letters, newest first",
                response_model=None)
    async def listed(request: Request, limit: int = 100) -> Response:
        rows: list[dict[str, Any]] = []

        def handle(_: bytes) -> tuple[int, dict[str, Any]]:
            limiter.check(bearer(request.headers.get("authorization"), admins))
            rows.extend({"id": item.id, "replayed": item.replayed,
                         **item.letter.model_dump(mode="json")}
                        for item in list_letters(directory, max(0, min(limit, 10_000))))
            return 200, {"dead_letters": rows}

        answer = await guarded(request, 0, handle, settings.retry_after_s)
        if answer.status_code != 200 or not wants_csv(request.headers.get("accept")):
            return answer
        # SPEC 6.2 CSV: one row per letter; the event (any JSON) as JSON text in one cell.
        body = render([flatten(r, spread=False) for r in rows], None if rows else DEAD_COLUMNS)
        return Response(body, media_type=CSV)

    @router.post("/v1/deadletters/replay", summary="Replay the collector's dead letters",
                 response_model=None)
    async def replayed(request: Request, since: str | None = None) -> JSONResponse:
        def handle(_: bytes) -> tuple[int, dict[str, Any]]:
            limiter.check(bearer(request.headers.get("authorization"), admins))
            start = parse_since(since)
            result = replay(directory, collector, clock(), start)
            return 200, {"replayed": result.replayed, "already_replayed": result.already,
                         "still_failing": [{"id": i, "reason": r} for i, r in result.failing]}

        return await guarded(request, 1024 * 1024, handle, settings.retry_after_s)

    return router


def parse_since(text: str | None) -> datetime | None:
    """`since=` as an aware UTC time; junk is a 400."""
    try:
        return parse_time(text, "since")
    except InvalidEventError as exc:
        raise MalformedBodyError(f"since is not an ISO-8601 time: {text!r}") from exc
