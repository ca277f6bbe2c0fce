"""The mock's one error hierarchy, rendered by one handler as the API's one envelope.

::

    ApiError                      {"error": {"code", "message", "issues"?}}
    ├── InvalidJson               400 invalid_json
    ├── InvalidRequest            400 invalid_request      (issues)
    ├── InvalidInputData          400 invalid_input_data   (issues)
    ├── Unauthorized              401 unauthorized
    ├── Forbidden                 403 forbidden
    ├── NotFound                  404 not_found
    ├── TemplateNotFound          404 template_not_found
    ├── VersionNotFound           404 version_not_found
    ├── MethodNotAllowed          405 method_not_allowed   (Allow)
    ├── NotReady                  409 not_ready
    ├── Conflict                  409 conflict
    ├── NoPublishedVersion        409 no_published_version
    ├── PayloadTooLarge           413 payload_too_large
    ├── RateLimited               429 rate_limited         (Retry-After)
    ├── Internal                  500 internal
    ├── EmailSendFailed           502 email_send_failed
    ├── EmailNotConfigured        503 email_not_configured
    └── QueueUnavailable          503 queue_unavailable

Which operation may answer which code is the spec's business (openapi.yaml); the tests check
that every class here is a (status, code) pair the spec declares.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, ClassVar


class ApiError(Exception):
    """An error the API answers with the envelope. Subclasses fix ``status`` and ``code``."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal"
    default_message: ClassVar[str] = "Internal error"

    def __init__(
        self,
        message: str | None = None,
        *,
        issues: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message or self.default_message)
        self.message = message or self.default_message
        self.issues = issues
        self.headers = headers or {}

    def envelope(self) -> dict[str, Any]:
        """The JSON body: ``{"error": {"code", "message", "issues"?}}``."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.issues is not None:
            error["issues"] = self.issues
        return {"error": error}


class InvalidJson(ApiError):
    status, code, default_message = 400, "invalid_json", "Body is not valid JSON"


class InvalidRequest(ApiError):
    status, code, default_message = 400, "invalid_request", "Body failed validation"


class InvalidInputData(ApiError):
    status, code = 400, "invalid_input_data"
    default_message = "Input data does not match the template manifest"


class Unauthorized(ApiError):
    status, code, default_message = 401, "unauthorized", "Missing or invalid API key"


class Forbidden(ApiError):
    status, code, default_message = 403, "forbidden", "Project no longer exists"


class NotFound(ApiError):
    status, code, default_message = 404, "not_found", "Not found"


class TemplateNotFound(ApiError):
    status, code, default_message = 404, "template_not_found", "Template not found"


class VersionNotFound(ApiError):
    status, code, default_message = 404, "version_not_found", "Template version not found"


class MethodNotAllowed(ApiError):
    status, code, default_message = 405, "method_not_allowed", "Method not allowed"


class NotReady(ApiError):
    status, code, default_message = 409, "not_ready", "Render is not ready"


class Conflict(ApiError):
    status, code, default_message = 409, "conflict", "Render is not downloadable"


class NoPublishedVersion(ApiError):
    status, code = 409, "no_published_version"
    default_message = "Template has no published version"


class PayloadTooLarge(ApiError):
    status, code, default_message = 413, "payload_too_large", "Request body too large"


class RateLimited(ApiError):
    status, code, default_message = 429, "rate_limited", "Too many requests"


class Internal(ApiError):
    status, code, default_message = 500, "internal", "Internal error"


class EmailSendFailed(ApiError):
    status, code, default_message = 502, "email_send_failed", "The email provider rejected the send"


class EmailNotConfigured(ApiError):
    status, code = 503, "email_not_configured"
    default_message = "Email is not configured on this deployment"


class QueueUnavailable(ApiError):
    status, code, default_message = 503, "queue_unavailable", "Render queue unavailable"


ALL_ERRORS: tuple[type[ApiError], ...] = tuple(ApiError.__subclasses__())
