"""Computed tags: UNS metrics defined by an expression over other UNS topics (docs/transforms.md)."""

from __future__ import annotations

from uns.transforms.errors import EvaluationError, ExpressionError
from uns.transforms.expr import Expression, ExpressionState, compile_expression

__all__ = ["EvaluationError", "Expression", "ExpressionError", "ExpressionState", "compile_expression"]
