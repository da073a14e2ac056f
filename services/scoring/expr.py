"""Rule conditions: a small, safe subset of CEL (Common Expression Language).

A condition is evaluated over a dict (an event payload in proto3 JSON with
proto field names, plus `derived` measurements). Supported:

- literals: numbers, 'strings' or "strings", true, false, null, [lists]
- field paths: `assignment.state`, `derived.arrive_seconds`; a missing field is null
- `==  !=  <  <=  >  >=`, `in` (list membership), `&&  ||  !`, `+ - * /`, parentheses
- `size(x)` (length of a list or string), `has(a.b)` (the field is present and not null)

Comparisons with null are false except `==`/`!=`. Nothing else of CEL is
accepted; a parse error names the position.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_TOKEN = re.compile(r"""
    \s*(?:
      (?P<num>\d+(?:\.\d+)?)
    | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<op>==|!=|<=|>=|&&|\|\||[<>!()\[\],.+\-*/])
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    )""", re.VERBOSE)


class ExpressionError(ValueError):
    pass


@dataclass(frozen=True)
class _Tok:
    kind: str
    value: Any
    pos: int


def _tokens(src: str) -> list[_Tok]:
    out, pos = [], 0
    while pos < len(src):
        if src[pos:].strip() == "":
            break
        m = _TOKEN.match(src, pos)
        if not m or m.end() == pos:
            raise ExpressionError(f"unexpected character at position {pos}: {src[pos:pos + 10]!r}")
        kind = m.lastgroup
        text = m.group(kind)
        start = m.start(kind)
        if kind == "num":
            out.append(_Tok("lit", float(text) if "." in text else int(text), start))
        elif kind == "str":
            out.append(_Tok("lit", bytes(text[1:-1], "utf-8").decode("unicode_escape")
                            if "\\" in text else text[1:-1], start))
        elif kind == "name" and text in ("true", "false", "null"):
            out.append(_Tok("lit", {"true": True, "false": False, "null": None}[text], start))
        elif kind == "name" and text == "in":
            out.append(_Tok("op", "in", start))
        else:
            out.append(_Tok("op" if kind == "op" else "name", text, start))
        pos = m.end()
    out.append(_Tok("end", None, len(src)))
    return out


# Binding powers, lowest first.
_BINARY = {"||": 1, "&&": 2, "==": 3, "!=": 3, "<": 3, "<=": 3, ">": 3, ">=": 3, "in": 3,
           "+": 4, "-": 4, "*": 5, "/": 5}


class _Parser:
    def __init__(self, src: str):
        self.toks = _tokens(src)
        self.i = 0

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self, value=None) -> _Tok:
        tok = self.toks[self.i]
        if value is not None and tok.value != value:
            raise ExpressionError(f"expected {value!r} at position {tok.pos}")
        self.i += 1
        return tok

    def parse(self):
        node = self.expr(0)
        if self.peek().kind != "end":
            raise ExpressionError(f"unexpected {self.peek().value!r} at position {self.peek().pos}")
        return node

    def expr(self, min_bp: int):
        left = self.unary()
        while True:
            tok = self.peek()
            bp = _BINARY.get(tok.value) if tok.kind == "op" else None
            if bp is None or bp <= min_bp:
                return left
            self.take()
            left = ("bin", tok.value, left, self.expr(bp))

    def unary(self):
        tok = self.peek()
        if tok.kind == "op" and tok.value in ("!", "-"):
            self.take()
            return ("not" if tok.value == "!" else "neg", self.unary())
        return self.primary()

    def primary(self):
        tok = self.take()
        if tok.kind == "lit":
            return ("lit", tok.value)
        if tok.kind == "op" and tok.value == "(":
            node = self.expr(0)
            self.take(")")
            return node
        if tok.kind == "op" and tok.value == "[":
            items = []
            if self.peek().value != "]":
                items.append(self.expr(0))
                while self.peek().value == ",":
                    self.take()
                    items.append(self.expr(0))
            self.take("]")
            return ("list", items)
        if tok.kind == "name":
            if tok.value in ("size", "has") and self.peek().value == "(":
                self.take("(")
                arg = self.expr(0)
                self.take(")")
                if tok.value == "has" and arg[0] != "path":
                    raise ExpressionError(f"has() takes a field path, at position {tok.pos}")
                return (tok.value, arg)
            path = [tok.value]
            while self.peek().value == ".":
                self.take()
                name = self.take()
                if name.kind != "name":
                    raise ExpressionError(f"expected a field name at position {name.pos}")
                path.append(name.value)
            return ("path", tuple(path))
        raise ExpressionError(f"unexpected {tok.value!r} at position {tok.pos}")


def compile_condition(src: str):
    """Parses a condition; raises ExpressionError naming what is wrong. Empty means always."""
    if not src.strip():
        return ("lit", True)
    return _Parser(src).parse()


def lookup(data: Any, path) -> Any:
    for key in path:
        if isinstance(data, dict):
            data = data.get(key)
        else:
            return None
    return data


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def evaluate(node, data: dict) -> Any:
    kind = node[0]
    if kind == "lit":
        return node[1]
    if kind == "path":
        return lookup(data, node[1])
    if kind == "list":
        return [evaluate(n, data) for n in node[1]]
    if kind == "not":
        return not truthy(evaluate(node[1], data))
    if kind == "neg":
        v = evaluate(node[1], data)
        return -v if _num(v) else None
    if kind == "size":
        v = evaluate(node[1], data)
        return len(v) if isinstance(v, (list, str, dict)) else 0
    if kind == "has":
        return lookup(data, node[1][1]) is not None
    _, op, l_node, r_node = node
    if op == "&&":
        return truthy(evaluate(l_node, data)) and truthy(evaluate(r_node, data))
    if op == "||":
        return truthy(evaluate(l_node, data)) or truthy(evaluate(r_node, data))
    left, right = evaluate(l_node, data), evaluate(r_node, data)
    if op == "==":
        return left == right
    if op == "!=":
        return left != right
    if op == "in":
        return isinstance(right, list) and left in right
    if op in ("+", "-", "*", "/"):
        if not (_num(left) and _num(right)):
            return None
        if op == "/":
            return left / right if right else None
        return left + right if op == "+" else left - right if op == "-" else left * right
    if left is None or right is None or _num(left) != _num(right):
        return False
    return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]


def truthy(v: Any) -> bool:
    return v is True or (_num(v) and v != 0)
