"""Identity keys of one Segment message (SPEC 2.1): extraction, normalisation, blocked values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ingest.errors import InvalidEventError
from journey.keys import MAX_KEY_CHARS, is_blocked, normalize_email, normalize_phone
from journey.schema import IdentityKey

_MAX_TYPE_CHARS = 64
# externalIds types that name a built-in key type are normalised like that type.
_BUILTIN_ALIASES: dict[str, str] = {
    "user_id": "user_id", "userid": "user_id", "anonymous_id": "anonymous_id",
    "anonymousid": "anonymous_id", "email": "email", "phone": "phone",
}


def mapping_at(container: Mapping[str, Any], name: str, where: str) -> Mapping[str, Any]:
    """The object at `name`, {} when absent or null; any other type rejects the event."""
    value = container.get(name)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidEventError(f"{where} must be an object", field=where)
    return value


def id_text(value: Any, where: str) -> str | None:
    """An id field as text: strings trimmed, integers (as SDKs send them) printed; else reject."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidEventError(f"{where} must be a string or a number", field=where)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if not isinstance(value, str):
        raise InvalidEventError(f"{where} must be a string or a number", field=where)
    return value.strip()


def clean_id(value: Any, where: str) -> str | None:
    """id_text, minus blocked values; over-long ids reject the event."""
    text = id_text(value, where)
    if text is None or is_blocked(text):
        return None
    if len(text) > MAX_KEY_CHARS:
        raise InvalidEventError(f"{where} is longer than {MAX_KEY_CHARS} chars", field=where)
    return text


def _first(places: list[Mapping[str, Any]], name: str, clean: Any) -> str | None:
    for place in places:
        found: str | None = clean(place.get(name))
        if found is not None:
            return found
    return None


def _external_keys(context: Mapping[str, Any]) -> list[IdentityKey]:
    raw = context.get("externalIds")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InvalidEventError("context.externalIds must be a list", field="context.externalIds")
    keys: list[IdentityKey] = []
    for i, item in enumerate(raw):
        where = f"context.externalIds[{i}]"
        if not isinstance(item, Mapping):
            raise InvalidEventError(f"{where} must be an object", field=where)
        kind = item.get("type")
        if not isinstance(kind, str) or not kind.strip() or len(kind.strip()) > _MAX_TYPE_CHARS:
            raise InvalidEventError(f"{where}.type must be a short non-empty string", field=where)
        key_type = kind.strip().lower()
        key_type = _BUILTIN_ALIASES.get(key_type, key_type)
        if key_type == "email":
            value = normalize_email(item.get("id"))
        elif key_type == "phone":
            value = normalize_phone(item.get("id"))
        else:
            value = clean_id(item.get("id"), f"{where}.id")
        if value is not None:
            keys.append(IdentityKey(type=key_type, value=value))
    return keys


def extract_keys(message: Mapping[str, Any], traits: Mapping[str, Any]) -> tuple[IdentityKey, ...]:
    """Every identity key of a message, blocked values dropped (may be empty).

    `traits` are the message's own top-level traits when they describe the user (identify).
    """
    context = mapping_at(message, "context", "context")
    places = [traits, mapping_at(context, "traits", "context.traits"),
              mapping_at(message, "properties", "properties")]
    keys: list[IdentityKey] = []
    for key_type, field in (("user_id", "userId"), ("anonymous_id", "anonymousId")):
        value = clean_id(message.get(field), field)
        if value is not None:
            keys.append(IdentityKey(type=key_type, value=value))
    email = _first(places, "email", normalize_email)
    if email is not None:
        keys.append(IdentityKey(type="email", value=email))
    phone = _first(places, "phone", normalize_phone)
    if phone is not None:
        keys.append(IdentityKey(type="phone", value=phone))
    keys.extend(_external_keys(context))
    return tuple(keys)
