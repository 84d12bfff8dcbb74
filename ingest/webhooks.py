"""Email-provider webhooks (SPEC 1.1 native endpoints): POST /v1/webhooks/sendgrid.

Also the helpers every bulk collector route shares: write-key auth from Basic or `?key=`, the
error-to-JSON guard, and storing mapped messages through the Segment routes' Collector.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from ingest import sendgrid
from ingest.errors import InvalidEventError, WireError
from ingest.ratelimit import RateLimiter, retry_fields, retry_headers
from ingest.routes import (
    MAYBE_STORED,
    Collector,
    Outcome,
    answer,
    count_request,
    read_body,
)
from ingest.settings import IngestSettings
from ingest.wire import authenticate, decode_body, event_size
from journey.deadletter import DeadLetter, DeadLetterStore
from journey.errors import RetryableError
from journey.log.base import LogProducer

log = logging.getLogger(__name__)
SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"
# (label, as sent, mapped message or why it could not be mapped); label = index or line number.
Mapped = tuple[int, Any, "dict[str, Any] | InvalidEventError"]
Handler = Callable[[bytes], tuple[int, dict[str, Any]]]


def write_key(request: Request, settings: IngestSettings) -> str:
    """The write key's name from Basic auth or `?key=` (for senders that cannot set headers)."""
    query = request.query_params.get("key")
    body = {"writeKey": query} if query is not None else {}
    return authenticate(request.headers.get("authorization"), body, settings.write_keys)


async def guarded(request: Request, limit: int, handler: Handler,
                  retry_after_s: int) -> JSONResponse:
    """Read the body, run `handler` off the event loop, and answer every failure as JSON."""
    try:
        raw = await read_body(request, limit)
        status, payload = await run_in_threadpool(handler, raw)
    except WireError as exc:
        status, payload = exc.status, {"success": False, "error": exc.message, **retry_fields(exc)}
    except ClientDisconnect:
        status, payload = 400, {"success": False, "error": "client disconnected mid-body"}
    except RetryableError as exc:
        log.warning("bulk request failed, client told to retry: %s", exc)
        status, payload = 503, {"success": False, "error": f"{exc.message}; {MAYBE_STORED}"}
    except Exception as exc:  # the log failed in a way it did not classify: still retryable
        log.exception("bulk request failed")
        status, payload = 503, {"success": False,
                                "error": f"the log failed ({type(exc).__name__}); {MAYBE_STORED}"}
    headers = retry_headers(payload) if status == 429 else {}
    if status == 503:
        headers["Retry-After"] = str(retry_after_s)
    count_request(request, status)
    return JSONResponse(payload, status_code=status, headers=headers)


def store_mapped(collector: Collector, unmappable: DeadLetterStore, items: Sequence[Mapped],
                 key: str | None, received_at: datetime) -> tuple[int, list[tuple[int, str]]]:
    """Append the mapped messages that normalise; dead-letter the rest. (stored, [(label, why)])."""
    bad = [(label, sent, error) for label, sent, error in items
           if isinstance(error, InvalidEventError)]
    # Not Segment messages, so not replayable: kept apart from the collector's dead letters.
    unmappable.append([DeadLetter(received_at=received_at, write_key=key, reason=error.message,
                                  index=label, event=sent, stage=unmappable.path.stem)
                       for label, sent, error in bad])
    good = [(label, message) for label, _, message in items if isinstance(message, dict)]
    outcome = collector.store([(event_size(m), m) for _, m in good], key, received_at)
    rejected = [(label, error.message) for label, _, error in bad]
    rejected += [(good[r["index"]][0], r["reason"]) for r in outcome.rejected]
    return outcome.stored, sorted(rejected)


def _mapped(items: list[Any]) -> list[Mapped]:
    out: list[Mapped] = []
    for index, item in enumerate(items):
        try:
            out.append((index, item, sendgrid.to_message(item)))
        except InvalidEventError as exc:
            out.append((index, item, exc))
    return out


def webhook_router(settings: IngestSettings, producer: LogProducer, clock: Callable[[], datetime],
                   limiter: RateLimiter | None = None) -> APIRouter:
    """POST /v1/webhooks/sendgrid: SendGrid's Event Webhook, signed or with a write key."""
    limiter = limiter or RateLimiter.from_settings(settings)
    letters = settings.data_dir / "deadletter"
    collector = Collector(settings, producer, DeadLetterStore(letters))
    unmappable = DeadLetterStore(letters, stage="sendgrid")
    configured = settings.sendgrid_public_key
    public_key = sendgrid.load_public_key(configured.get_secret_value()) if configured else None
    router = APIRouter(tags=["collector"])

    @router.post("/v1/webhooks/sendgrid", summary="SendGrid Event Webhook", response_model=None)
    async def receive(request: Request) -> JSONResponse:
        def handle(raw: bytes) -> tuple[int, dict[str, Any]]:
            if public_key is not None:
                sendgrid.verify_signature(public_key, request.headers.get(SIGNATURE),
                                          request.headers.get(TIMESTAMP), raw)
                key = "sendgrid"
            else:
                key = write_key(request, settings)
            limiter.check(key)
            body = decode_body(raw, request.headers.get("content-encoding"),
                               settings.max_bulk_bytes)
            items = _mapped(sendgrid.parse_events(body))
            stored, rejected = store_mapped(collector, unmappable, items, key, clock())
            return answer(collector_outcome(stored, rejected), single=False)

        return await guarded(request, settings.max_bulk_bytes, handle, settings.retry_after_s)

    return router


def collector_outcome(stored: int, rejected: list[tuple[int, str]]) -> Outcome:
    """An Outcome for `answer`, rejected events named by index."""
    return Outcome(stored=stored, rejected=[{"index": i, "reason": r} for i, r in rejected])
