"""Errors are values with a status and a message a user can act on; the API renders them once."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a request, rendered as one item of SignalWire's `errors` array."""

    attribute: str | None
    detail: str
    title: str = "Invalid Attribute"
    code: str = "invalid_parameter"


class SiplineError(Exception):
    status = 500

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail)
        self.detail = detail


class ValidationFailed(SiplineError):
    status = 422

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(p.detail for p in problems))
        self.problems = problems


class BadRequest(SiplineError):
    status = 400


class PayloadTooLarge(SiplineError):
    status = 413


class UnsupportedMediaType(SiplineError):
    status = 415


class NotFound(SiplineError):
    status = 404


class Unauthorized(SiplineError):
    status = 401


class Forbidden(SiplineError):
    status = 403


class Conflict(SiplineError):
    """A uniqueness rule lost a race in the database; reported as 422 like the pre-check."""

    status = 422

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.detail)
        self.problem = problem
