"""One error tree for the whole service; adapters map it to HTTP statuses and JSON bodies."""

from __future__ import annotations

from collections.abc import Sequence

from models.ai_usage import FieldError


class ServiceError(Exception):
    """Base of every error the service raises on purpose."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationFailed(ServiceError):
    """Bad input: each field names what is wrong and which rule it broke. Nothing was stored."""

    status = 422
    code = "validation_failed"

    def __init__(self, fields: Sequence[FieldError], message: str | None = None) -> None:
        self.fields = list(fields)
        summary = "; ".join(f"{f.field}: {f.message}" for f in self.fields)
        super().__init__(message or f"invalid input: {summary}")


class IdempotencyConflict(ServiceError):
    """This (tenant_id, request_id) is already stored with different billed content; nothing was changed.

    ``fields`` names what differs, never the stored values (they may be another caller's).
    """

    status = 409
    code = "idempotency_conflict"

    def __init__(self, fields: Sequence[FieldError]) -> None:
        self.fields = list(fields)
        names = ", ".join(f.field for f in self.fields)
        super().__init__(f"request_id was already logged with different content ({names}); nothing was stored")


class BadRequest(ServiceError):
    status = 400
    code = "bad_request"


class Unauthorized(ServiceError):
    status = 401
    code = "unauthorized"


class Forbidden(ServiceError):
    status = 403
    code = "forbidden"


class NotFound(ServiceError):
    status = 404
    code = "not_found"


class MethodNotAllowed(ServiceError):
    status = 405
    code = "method_not_allowed"


class PayloadTooLarge(ServiceError):
    status = 413
    code = "payload_too_large"


class StoreError(ServiceError):
    """The store could not answer (after its own retries); the cause is chained with ``from``."""

    status = 503
    code = "store_unavailable"

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ConfigurationError(ServiceError):
    code = "configuration_error"
