"""Error bodies in each client's own convention.

- Cohere routes (and ``/v1/query``, ``/info``, ``/health``): ``{"message": ...}``.
- ``POST /rerank`` in TEI's shape: ``{"error": ..., "error_type": ...}`` with text-embeddings-inference's types and
  the statuses TEI pairs them with: ``Empty`` 400 (no texts, an empty query), ``Validation`` 413 (a limit: too
  many texts, a pair over ``max_length`` without ``truncate``, a body too large), ``Tokenizer`` 422,
  ``Backend`` 424 (the model failed), ``Overloaded`` 429, ``Unhealthy`` 503. Statuses TEI does not produce keep
  their own code with type ``Validation``: 422 for a body that does not fit the schema (TEI answers those with a
  plain-text 422), 404 for an unknown ``model``, 401 for a missing or wrong token (TEI sends no body there).
- ``POST /rerank`` in infinity's shape: infinity's OpenAI-style ``{"error": {"message", "type", "param", "code"}}``.

Errors found before the body is read (401, the ``max_body_bytes`` 413) answer ``/rerank`` in TEI's shape.
"""

from __future__ import annotations

from typing import Literal, Optional

from rerankforge.core.errors import RerankforgeError

Shape = Literal["cohere", "tei", "infinity"]

TEI_TYPE_BY_STATUS = {400: "Empty", 413: "Validation", 422: "Validation", 424: "Backend", 429: "Overloaded",
                      503: "Unhealthy"}
INFINITY_TYPE_BY_STATUS = {401: "authentication_error", 429: "rate_limit_error"}


class ServeError(RerankforgeError):
    """A request the server answers with ``status`` and ``message``; ``tei_type`` overrides TEI's error type."""

    def __init__(self, status: int, message: str, tei_type: Optional[str] = None):
        super().__init__(message)
        self.status, self.message, self.tei_type = status, message, tei_type


def shape_of(path: str, state) -> Shape:
    """The convention of the request at ``path``: what its handler recorded in ``request.state``, else TEI's for
    ``/rerank`` and Cohere's for everything else."""
    return getattr(state, "shape", None) or ("tei" if path == "/rerank" else "cohere")


def error_body(shape: Shape, status: int, message: str, tei_type: Optional[str] = None) -> dict:
    if shape == "tei":
        return {"error": message, "error_type": tei_type or TEI_TYPE_BY_STATUS.get(status, "Validation")}
    if shape == "infinity":
        kind = INFINITY_TYPE_BY_STATUS.get(status, "server_error" if status >= 500 else "invalid_request_error")
        return {"error": {"message": message, "type": kind, "param": None, "code": status}}
    return {"message": message}


def unexpected(shape: Shape, exc: BaseException) -> tuple[int, dict]:
    """Status and body for an exception nobody anticipated (its traceback is logged by the caller). TEI calls a
    failed inference a Backend error (424)."""
    if shape == "tei":
        return 424, error_body(shape, 424, f"inference failed ({type(exc).__name__}); the server logged the traceback.",
                               "Backend")
    return 500, error_body(shape, 500, f"internal server error ({type(exc).__name__}); the server logged the "
                                       "traceback.")


def validation_message(errors: list[dict]) -> tuple[Optional[Shape], str]:
    """The shape a schema error belongs to (from the ``/rerank`` union's tag in its location) and one message
    naming each bad field, e.g. ``"query: Field required"``."""
    shape, parts = None, []
    for error in errors:
        loc = [str(p) for p in error["loc"][1:]]  # drop "body"
        if loc and loc[0] in ("tei", "infinity"):
            shape = shape or loc[0]
            loc = loc[1:]
        if error.get("type") == "json_invalid":
            reason = (error.get("ctx") or {}).get("error", "")
            parts.append(f"body: not valid JSON ({reason} at character {loc[0] if loc else '?'}); send a JSON object.")
            continue
        parts.append(f"{'.'.join(loc) or 'body'}: {error['msg']}")
    return shape, "; ".join(parts)
