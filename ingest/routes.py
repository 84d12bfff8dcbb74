"""The collector's HTTP routes: Segment's /v1/* endpoints, /v1/import included (SPEC 1.1, 1.3).

The router is self-contained (it answers every failure itself, as JSON) so that `journey up` can
mount it next to the API's routes. A 200 is sent only after the log durably accepted the events.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from ingest.errors import EventTooLargeError, InvalidEventError, TooLargeError, WireError
from ingest.normalize import normalize
from ingest.ratelimit import RateLimiter, retry_fields, retry_headers
from ingest.settings import IngestSettings
from ingest.wire import (
    authenticate,
    check_content_length,
    decode_body,
    messages_of,
    parse_body,
    write_key_channels,
)
from journey.deadletter import DeadLetter, DeadLetterStore
from journey.errors import RetryableError
from journey.log.base import LogProducer
from journey.metrics import COLLECTOR_EVENTS, COLLECTOR_REQUESTS, LOG_APPEND_SECONDS
from journey.schema import Event

log = logging.getLogger(__name__)

# Endpoint name -> the message type it implies (None: a batch of typed messages).
ENDPOINTS: dict[str, str | None] = {
    "batch": None, "import": None, "track": "track", "identify": "identify", "page": "page",
    "screen": "screen", "group": "group", "alias": "alias", "b": None, "t": "track",
    "i": "identify", "p": "page", "s": "screen", "g": "group", "a": "alias",
}
_ALLOW_HEADERS = "Authorization, Content-Type, Content-Encoding"
# A failed append may still have reached the log (a timeout after the broker wrote it), so a
# 503 never claims that nothing was stored; a retry is safe because event ids deduplicate.
MAYBE_STORED = ("the events may have been stored; retry with the same messageId: "
                "duplicates are dropped")


def count_request(request: Request, status: int) -> None:
    """journey_collector_requests by the route's path template (bounded labels), and status."""
    route = request.scope.get("route")
    path = getattr(route, "path", None) or "unmatched"
    COLLECTOR_REQUESTS.labels(route=path, status=str(status)).inc()


def partition_key(event: Event) -> bytes:
    """A browser's events share its anonymous_id's partition before and after identify."""
    for key in event.keys:
        if key.type == "anonymous_id":
            return key.value.encode()
    return f"{event.primary_key.type}:{event.primary_key.value}".encode()


@dataclass
class Outcome:
    """What became of one request's messages."""

    stored: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    too_large: int = 0


class Collector:
    """Turns one decoded request into log records and dead letters (runs off the event loop)."""

    def __init__(self, settings: IngestSettings, producer: LogProducer,
                 dead_letters: DeadLetterStore, limiter: RateLimiter | None = None) -> None:
        self.settings = settings
        self.producer = producer
        self.dead_letters = dead_letters
        self.limiter = limiter
        self.key_channels = write_key_channels(settings.write_keys)

    def handle(self, raw: bytes, encoding: str | None, key: str | None, authorization: str | None,
               kind: str | None, received_at: datetime) -> Outcome:
        """Decode, authenticate, normalise; dead-letter the bad, append the good."""
        s = self.settings
        body = parse_body(decode_body(raw, encoding, s.max_request_bytes))
        key = key or authenticate(authorization, body, s.write_keys)
        if self.limiter is not None:
            self.limiter.check(key)
        return self.store(messages_of(body, kind, s.max_batch_events), key, received_at)

    def store(self, messages: Sequence[tuple[int | None, Any]], key: str | None,
              received_at: datetime) -> Outcome:
        """Normalise (size, message) pairs; dead-letter the bad, append the good."""
        outcome = Outcome()
        records: list[tuple[bytes, bytes]] = []
        letters: list[DeadLetter] = []
        for index, (size, message) in enumerate(messages):
            try:
                event = self.event(size, message, received_at, self.key_channels.get(key or ""))
                record = (partition_key(event), event.to_json())
            except InvalidEventError as exc:
                reason = str(exc.message)
                outcome.too_large += isinstance(exc, EventTooLargeError)
            except Exception as exc:  # a bug must cost one event (kept for replay), not the batch
                log.exception("normalising event %d failed", index)
                reason = f"could not normalise the event ({type(exc).__name__}: {exc})"
            else:
                records.append(record)
                continue
            outcome.rejected.append({"index": index, "reason": reason})
            letters.append(DeadLetter(received_at=received_at, write_key=key, reason=reason,
                                      index=index, event=message))
        # Dead letters first: if the append then fails, the client retries and nothing is lost.
        self.dead_letters.append(letters)
        if records:
            with LOG_APPEND_SECONDS.time():
                self.producer.append(records)
        outcome.stored = len(records)
        # Counted here, not per route: webhooks, imports and replays store through this too.
        COLLECTOR_EVENTS.labels(outcome="accepted").inc(outcome.stored)
        COLLECTOR_EVENTS.labels(outcome="rejected").inc(len(outcome.rejected))
        return outcome

    def event(self, size: int | None, message: Any, received_at: datetime,
              key_channel: str | None = None) -> Event:
        """The canonical event of one message, or InvalidEventError (size limit, SPEC 1.2)."""
        limit = self.settings.max_event_bytes
        if size is None:
            raise InvalidEventError("event is nested too deeply to be stored as JSON")
        if size > limit:
            raise EventTooLargeError(f"event is {size} bytes; the limit is {limit}")
        if not isinstance(message, dict):
            raise InvalidEventError("each batch item must be a JSON object")
        return normalize(message, received_at, self.settings.future_tolerance_s, key_channel)


def answer(outcome: Outcome, single: bool) -> tuple[int, dict[str, Any]]:
    """Status and JSON of a request's outcome: 200 unless every event was rejected (SPEC 1.3)."""
    if not outcome.rejected:
        return 200, {"success": True}
    if outcome.stored:
        return 200, {"success": True, "rejected": outcome.rejected}
    status = 413 if single and outcome.too_large else 400
    error = outcome.rejected[0]["reason"] if single else "every event of the batch was rejected"
    return status, {"success": False, "error": error, "rejected": outcome.rejected}


def cors_headers(origin: str | None, allowed: Sequence[str]) -> dict[str, str]:
    """Access-Control-Allow-Origin for a browser origin that may send events."""
    if not origin:
        return {}
    if "*" in allowed:
        return {"Access-Control-Allow-Origin": "*"}
    if origin in allowed:
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    return {}


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with TooLargeError as soon as it passes `limit` bytes."""
    check_content_length(request.headers.get("content-length"), limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise TooLargeError(f"request body is over the limit of {limit} bytes", limit=limit)
    return bytes(body)


def collector_router(settings: IngestSettings, producer: LogProducer,
                     clock: Callable[[], datetime],
                     limiter: RateLimiter | None = None) -> APIRouter:
    """POST /v1/{batch,track,identify,page,screen,group,alias} and the short forms /v1/{b,t,...}."""
    limiter = limiter or RateLimiter.from_settings(settings)
    collector = Collector(settings, producer, DeadLetterStore(settings.data_dir / "deadletter"),
                          limiter)
    router = APIRouter(tags=["collector"])

    def endpoint(kind: str | None) -> Callable[[Request], Any]:
        async def receive(request: Request) -> Response:
            headers = cors_headers(request.headers.get("origin"), settings.cors_origins)
            status, payload = await _receive(request, kind)
            if status == 503:
                headers["Retry-After"] = str(settings.retry_after_s)
            if status == 429:
                headers.update(retry_headers(payload))
            count_request(request, status)
            return JSONResponse(payload, status_code=status, headers=headers)

        return receive

    async def _receive(request: Request, kind: str | None) -> tuple[int, dict[str, Any]]:
        authorization = request.headers.get("authorization")
        try:
            key = authenticate(authorization, {}, settings.write_keys) if authorization else None
            raw = await read_body(request, settings.max_request_bytes)
            outcome = await run_in_threadpool(
                collector.handle, raw, request.headers.get("content-encoding"), key,
                authorization, kind, clock())
        except WireError as exc:
            return exc.status, {"success": False, "error": exc.message, **retry_fields(exc)}
        except ClientDisconnect:
            return 400, {"success": False, "error": "client disconnected before the body ended"}
        except RetryableError as exc:
            log.warning("append failed, client told to retry: %s", exc)
            return 503, {"success": False, "error": f"{exc.message}; {MAYBE_STORED}"}
        except Exception as exc:  # the log failed in a way it did not classify: still retryable
            log.exception("append failed")
            return 503, {"success": False,
                         "error": f"the log failed ({type(exc).__name__}); {MAYBE_STORED}"}
        return answer(outcome, single=kind is not None)

    async def preflight(request: Request) -> Response:
        headers = cors_headers(request.headers.get("origin"), settings.cors_origins)
        headers.update({"Access-Control-Allow-Methods": "POST, OPTIONS",
                        "Access-Control-Allow-Headers": _ALLOW_HEADERS,
                        "Access-Control-Max-Age": "86400"})
        return Response(status_code=204, headers=headers)

    for name, kind in ENDPOINTS.items():
        router.add_api_route(f"/v1/{name}", endpoint(kind), methods=["POST"],
                             summary=f"Segment {name} call", response_model=None)
        # analytics-java posts to /v1/import/: answered here, not redirected (a 307 to a POST
        # is not followed by every client or proxy).
        router.add_api_route(f"/v1/{name}/", endpoint(kind), methods=["POST"],
                             include_in_schema=False)
        router.add_api_route(f"/v1/{name}", preflight, methods=["OPTIONS"],
                             include_in_schema=False)
    return router
