"""A rule's optional condition: an expression of the computed tags' language over the firing.

The names it may read are the firing's: ``value``, ``previous``, ``topic``, ``path``, ``phase``,
``rule`` and ``timestamp_ms``. It is compiled when the rules are checked (a refused construct names
the rule and the column) and evaluated for each firing; a failure is the rule's run-time error.
"""

from __future__ import annotations

from model.rules import Rule
from uns.errors import ConfigError
from uns.rules.triggers import Firing
from uns.transforms import Expression, ExpressionError, compile_expression

__all__ = ["NAMES", "Condition", "compile_condition"]

NAMES = ("value", "previous", "topic", "path", "phase", "rule", "timestamp_ms")
"""What a condition may read."""


class Condition:
    """A compiled condition; ``holds`` evaluates it for one firing."""

    def __init__(self, expression: Expression) -> None:
        self._expression = expression
        self._state = expression.new_state()

    def holds(self, firing: Firing, rule: str) -> bool:
        """Whether the rule acts on ``firing``.

        Raises:
            EvaluationError: the expression failed (a string compared with a number...).
        """
        context = firing.context(rule)
        values = {name: context[name] for name in NAMES}
        return bool(self._expression.evaluate(values, now_ms=firing.timestamp_ms, state=self._state))


def compile_condition(rule: Rule) -> Condition:
    """The rule's condition compiled.

    Raises:
        ConfigError: the expression is refused, naming ``rules.<name>.condition`` and the column.
    """
    try:
        return Condition(compile_expression(rule.condition or "True", names=NAMES))
    except ExpressionError as exc:
        raise ConfigError(source="settings", path=f"rules.{rule.name}.condition", reason=str(exc)) from exc
