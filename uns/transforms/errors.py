"""Errors of the expression language and the computed tags built on it."""

from __future__ import annotations

from uns.errors import UnsError

__all__ = ["EvaluationError", "ExpressionError"]


class ExpressionError(UnsError):
    """An expression was refused when it was compiled.

    The message reads ``expression 'a.b + 1': column 1: attribute access is not allowed``; the
    column counts from 1, as an editor shows it.
    """

    def __init__(self, *, expression: str, column: int, construct: str) -> None:
        self.expression = expression
        self.column = column
        self.construct = construct
        super().__init__(f"expression {expression!r}: column {column}: {construct}")


class EvaluationError(UnsError):
    """An expression failed while it was evaluated (division by zero, a string times a number...)."""

    def __init__(self, *, expression: str, reason: str) -> None:
        self.expression = expression
        self.reason = reason
        super().__init__(f"expression {expression!r}: {reason}")
