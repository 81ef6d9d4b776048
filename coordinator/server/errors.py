"""Domain errors; `app.py` turns each into a JSON error with its HTTP status."""

from __future__ import annotations


class FarmError(Exception):
    """A request the farm refuses; the message says what is wrong and what to do."""

    status = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class BadRequest(FarmError):
    status = 400


class Unauthorized(FarmError):
    status = 401


class Forbidden(FarmError):
    status = 403


class NotFound(FarmError):
    status = 404


class Conflict(FarmError):
    """The resource is not in a state that allows the action (e.g. a lost lease)."""

    status = 409


class TooLarge(FarmError):
    status = 413


class InsufficientStorage(FarmError):
    status = 507
