"""The expression language of computed tags and rules: parsed with ``ast``, compiled once to closures.

Only a whitelist of Python's expression syntax is accepted (see docs/transforms.md): constants,
names bound by the caller, arithmetic, comparisons, ``and``/``or``/``not``, ``x if c else y`` and
calls of the functions below. Anything else (attributes, subscripts, lambdas, comprehensions...)
is refused with the column and the construct. The accepted tree is turned into nested Python
closures once, so the user's text is never given to ``eval``/``exec``/``compile`` and an
evaluation is a few closure calls.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Collection, Mapping
from typing import Any

from model.duration import duration_ms
from uns.transforms.errors import EvaluationError, ExpressionError
from uns.transforms.expr_state import STATEFUL

__all__ = ["FUNCTIONS", "MAX_DEPTH", "MAX_LENGTH", "MAX_NODES", "Expression", "ExpressionState", "compile_expression"]

MAX_LENGTH = 2000
"""Characters an expression may have."""
MAX_NODES = 256
"""Syntax tree nodes an expression may have."""
MAX_DEPTH = 32
"""Nesting an expression may have."""
_MAX_POW_EXPONENT = 1024

_Fn = Callable[[Mapping[str, Any], "ExpressionState"], Any]


class ExpressionState:
    """What one tag's stateful calls remember between evaluations, and the evaluation's time."""

    __slots__ = ("now_ms", "slots")

    def __init__(self, slots: list[Any]) -> None:
        self.now_ms = 0
        self.slots = slots


def _numbers(name: str, a: Any, b: Any) -> None:
    # Only numbers: "x" * 10**9 or "%s" % x would let a string grow or format without bound.
    if not isinstance(a, int | float) or not isinstance(b, int | float):
        raise TypeError(f"{name} needs numbers (got {type(a).__name__} and {type(b).__name__})")


def _mul(a: Any, b: Any) -> Any:
    _numbers("*", a, b)
    return a * b


def _mod(a: Any, b: Any) -> Any:
    _numbers("%", a, b)
    return a % b


def _floordiv(a: Any, b: Any) -> Any:
    _numbers("//", a, b)
    return a // b


def _pow(a: Any, b: Any) -> Any:
    _numbers("**", a, b)
    if abs(b) > _MAX_POW_EXPONENT:
        raise OverflowError(f"** with an exponent beyond {_MAX_POW_EXPONENT} (got {b})")
    return float(a) ** b


def _clamp(x: Any, low: Any, high: Any) -> Any:
    return low if x < low else high if x > high else x


def _round(x: Any, digits: Any = 0) -> Any:
    return round(x, int(digits))


def _min(*args: Any) -> Any:
    return min(args)


def _max(*args: Any) -> Any:
    return max(args)


FUNCTIONS: dict[str, tuple[Callable[..., Any], int, int]] = {
    "abs": (abs, 1, 1),
    "min": (_min, 2, 16),
    "max": (_max, 2, 16),
    "round": (_round, 1, 2),
    "clamp": (_clamp, 3, 3),
}
"""The plain functions: name -> (function, fewest arguments, most arguments)."""

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: _mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: _floordiv,
    ast.Mod: _mod,
    ast.Pow: _pow,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
    ast.Not: operator.not_,
}
_REFUSED = {
    ast.Attribute: "attribute access",
    ast.Subscript: "subscripts",
    ast.Lambda: "lambda",
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "comprehensions",
    ast.NamedExpr: "assignment (:=)",
    ast.Await: "await",
    ast.Starred: "* arguments",
    ast.JoinedStr: "f-strings",
    ast.List: "lists",
    ast.Tuple: "tuples",
    ast.Dict: "dicts",
    ast.Set: "sets",
}


class Expression:
    """One compiled expression. ``names`` are the input names it reads."""

    __slots__ = ("_default", "_fn", "_slot_types", "names", "stateful", "text")

    def __init__(self, text: str, fn: _Fn, names: frozenset[str], slot_types: list[Callable[[], Any]]) -> None:
        self.text = text
        self.names = names
        self.stateful = bool(slot_types)
        self._fn = fn
        self._slot_types = slot_types
        self._default: ExpressionState | None = None

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"

    def new_state(self) -> ExpressionState:
        """Fresh memory for the stateful calls (one per tag or rule using this expression)."""
        return ExpressionState([make() for make in self._slot_types])

    def evaluate(
        self, values: Mapping[str, object], *, now_ms: int = 0, state: ExpressionState | None = None
    ) -> object:
        """The value for these inputs; ``now_ms`` (the newest input's time) steps the stateful calls.

        Without ``state`` the expression's own one is used.

        Raises:
            EvaluationError: the evaluation failed (division by zero, a missing name, wrong types...).
        """
        if state is None:
            state = self._default
            if state is None:
                state = self._default = self.new_state()
        state.now_ms = now_ms
        try:
            return self._fn(values, state)
        except KeyError as exc:
            raise EvaluationError(expression=self.text, reason=f"no value for {exc.args[0]!r}") from exc
        except (ArithmeticError, TypeError, ValueError) as exc:
            raise EvaluationError(expression=self.text, reason=f"{type(exc).__name__}: {exc}") from exc


def compile_expression(text: str, *, names: Collection[str] | None = None) -> Expression:
    """Parse, check and compile ``text``. ``names`` are the names it may read (None: any).

    Raises:
        ExpressionError: a syntax error or a refused construct, with its column.
    """
    if len(text) > MAX_LENGTH:
        raise ExpressionError(expression=text[:60] + "...", column=MAX_LENGTH, construct=f"longer than {MAX_LENGTH}")
    flat = " ".join(text.splitlines()).strip()
    try:
        tree = ast.parse(flat, mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(
            expression=text, column=exc.offset or len(flat) + 1, construct=f"syntax: {exc.msg}"
        ) from None
    except (RecursionError, MemoryError):
        raise ExpressionError(expression=text, column=1, construct="nested too deeply") from None
    count = sum(1 for _ in ast.walk(tree))
    if count > MAX_NODES:
        raise ExpressionError(expression=text, column=1, construct=f"{count} syntax nodes, more than {MAX_NODES}")
    compiler = _Compiler(flat, None if names is None else frozenset(names))
    fn = compiler.node(tree.body, 0)
    return Expression(text, fn, frozenset(compiler.used), compiler.slots)


class _Compiler:
    def __init__(self, text: str, allowed: frozenset[str] | None) -> None:
        self.text = text
        self.allowed = allowed
        self.used: set[str] = set()
        self.slots: list[Callable[[], Any]] = []

    def fail(self, node: ast.AST, construct: str) -> ExpressionError:
        offset = getattr(node, "col_offset", 0)
        column = len(self.text.encode()[:offset].decode(errors="ignore")) + 1
        return ExpressionError(expression=self.text, column=column, construct=construct)

    def node(self, node: ast.expr, depth: int) -> _Fn:
        if depth > MAX_DEPTH:
            raise self.fail(node, f"nested deeper than {MAX_DEPTH}")
        depth += 1
        if isinstance(node, ast.Constant):
            return self.constant(node)
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.BinOp):
            return self.binary(node, depth)
        if isinstance(node, ast.UnaryOp):
            fn1 = _UNARY.get(type(node.op))
            if fn1 is None:
                raise self.fail(node, f"the operator {type(node.op).__name__} is not allowed")
            inner = self.node(node.operand, depth)
            return lambda v, s: fn1(inner(v, s))
        if isinstance(node, ast.BoolOp):
            return self.boolean(node, depth)
        if isinstance(node, ast.Compare):
            return self.compare(node, depth)
        if isinstance(node, ast.IfExp):
            test, yes, no = (self.node(n, depth) for n in (node.test, node.body, node.orelse))
            return lambda v, s: yes(v, s) if test(v, s) else no(v, s)
        if isinstance(node, ast.Call):
            return self.call(node, depth)
        what = _REFUSED.get(type(node), type(node).__name__)
        raise self.fail(node, f"{what} not allowed")

    def constant(self, node: ast.Constant) -> _Fn:
        value = node.value
        if value is None or not isinstance(value, bool | int | float | str):
            raise self.fail(node, f"the constant {value!r} is not allowed (numbers, strings, True, False)")
        return lambda v, s: value

    def name(self, node: ast.Name) -> _Fn:
        key = node.id
        if key in FUNCTIONS or key in STATEFUL:
            raise self.fail(node, f"the function {key!r} is used without calling it")
        if self.allowed is not None and key not in self.allowed:
            known = ", ".join(sorted(self.allowed)) or "none"
            raise self.fail(node, f"unknown name {key!r} (known: {known})")
        self.used.add(key)
        return lambda v, s: v[key]

    def binary(self, node: ast.BinOp, depth: int) -> _Fn:
        fn2 = _BINARY.get(type(node.op))
        if fn2 is None:
            raise self.fail(node, f"the operator {type(node.op).__name__} is not allowed")
        left, right = self.node(node.left, depth), self.node(node.right, depth)
        return lambda v, s: fn2(left(v, s), right(v, s))

    def boolean(self, node: ast.BoolOp, depth: int) -> _Fn:
        parts = [self.node(n, depth) for n in node.values]
        if isinstance(node.op, ast.And):

            def all_of(v: Mapping[str, Any], s: ExpressionState) -> Any:
                result: Any = True
                for part in parts:
                    result = part(v, s)
                    if not result:
                        return result
                return result

            return all_of

        def any_of(v: Mapping[str, Any], s: ExpressionState) -> Any:
            result: Any = False
            for part in parts:
                result = part(v, s)
                if result:
                    return result
            return result

        return any_of

    def compare(self, node: ast.Compare, depth: int) -> _Fn:
        ops = []
        for op in node.ops:
            fn2 = _COMPARE.get(type(op))
            if fn2 is None:
                raise self.fail(node, f"the comparison {type(op).__name__} is not allowed")
            ops.append(fn2)
        first = self.node(node.left, depth)
        rest = [self.node(n, depth) for n in node.comparators]
        if len(ops) == 1:
            only, second = ops[0], rest[0]
            return lambda v, s: only(first(v, s), second(v, s))
        pairs = list(zip(ops, rest, strict=True))

        def chain(v: Mapping[str, Any], s: ExpressionState) -> Any:
            left = first(v, s)
            for op, part in pairs:
                right = part(v, s)
                if not op(left, right):
                    return False
                left = right
            return True

        return chain

    def call(self, node: ast.Call, depth: int) -> _Fn:
        if not isinstance(node.func, ast.Name):
            raise self.fail(node, "only the listed functions may be called, by name")
        name = node.func.id
        if node.keywords:
            raise self.fail(node, f"{name}(): keyword arguments are not allowed")
        if name in STATEFUL:
            return self.stateful(node, name, depth)
        if name not in FUNCTIONS:
            known = ", ".join(sorted([*FUNCTIONS, *STATEFUL]))
            raise self.fail(node, f"unknown function {name!r} (known: {known})")
        fn, fewest, most = FUNCTIONS[name]
        if not fewest <= len(node.args) <= most:
            raise self.fail(node, f"{name}() takes {fewest}..{most} arguments (got {len(node.args)})")
        args = [self.node(n, depth) for n in node.args]
        if len(args) == 1:
            (a,) = args
            return lambda v, s: fn(a(v, s))
        if len(args) == 2:
            a, b = args
            return lambda v, s: fn(a(v, s), b(v, s))
        return lambda v, s: fn(*[arg(v, s) for arg in args])

    def stateful(self, node: ast.Call, name: str, depth: int) -> _Fn:
        cls, count, with_duration = STATEFUL[name]
        want = count + with_duration
        if len(node.args) != want:
            form = f'{name}(x, "5m")' if with_duration else f"{name}({', '.join(['x', 'low', 'high'][:count])})"
            raise self.fail(node, f"{name}() takes {want} arguments, as in {form} (got {len(node.args)})")
        args = [self.node(n, depth) for n in node.args[:count]]
        if with_duration:
            last = node.args[-1]
            if not isinstance(last, ast.Constant) or not isinstance(last.value, str):
                raise self.fail(last, f'{name}(): the window must be a duration string such as "5m"')
            try:
                ms = duration_ms(last.value)
            except ValueError as exc:
                raise self.fail(last, f"{name}(): {exc}") from None
            self.slots.append(lambda: cls(ms))
        else:
            self.slots.append(cls)
        index = len(self.slots) - 1
        if count == 1:
            (a,) = args
            return lambda v, s: s.slots[index].step(s.now_ms, a(v, s))
        return lambda v, s: s.slots[index].step(s.now_ms, *[arg(v, s) for arg in args])
