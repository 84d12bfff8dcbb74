"""Errors of the analytics API. Each knows its HTTP status; the routes render it as JSON."""

from __future__ import annotations

from journey.errors import FatalError, RetryableError


class ApiError(FatalError):
    """A request the API cannot answer as asked; the caller must change it."""

    status: int = 400
    code: str = "bad_request"


class BadParameterError(ApiError):
    """A query parameter is malformed (bad date, unknown channel, ...). Context: param, value."""

    code = "bad_parameter"


class UnknownModelError(BadParameterError):
    """`model=` names no active stage model. Context: model, known (the active models)."""

    code = "unknown_model"


class UnknownTraitError(BadParameterError):
    """A `trait.X=` filter names a trait no customer has. Context: trait, known."""

    code = "unknown_trait"


class UnauthorizedError(ApiError):
    """No bearer token, or one that is not in JOURNEY_API_TOKENS."""

    status = 401
    code = "unauthorized"


class AccountNotFoundError(ApiError):
    """No account has the group id of the path (SPEC 5.1). Context: account_id."""

    status = 404
    code = "account_not_found"


class CustomerNotFoundError(ApiError):
    """No identity key matches the customer key of the path. Context: key."""

    status = 404
    code = "customer_not_found"


class SnapshotReadError(RetryableError):
    """A file of the served snapshot could not be read (e.g. removed after the writer's grace
    period while the API still served that version); a retry reads the newer snapshot."""

    status: int = 503
    code: str = "snapshot_unreadable"


class NotReadyError(RetryableError):
    """The warehouse has no committed snapshot yet; retry once the processor has written one."""

    status: int = 503
    code: str = "not_ready"
