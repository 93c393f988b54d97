"""Tokens of the filter language and the lexer that splits an expression into them.

``FilterSyntaxError`` lives here, at the bottom of the package, because the lexer is the
first stage to raise it; the parser and the binder raise the same error, each with a
0-based position into the expression's text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal


class FilterSyntaxError(ValueError):
    """A filter expression that cannot be parsed or bound; ``position`` is a 0-based offset."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} at position {position}")
        self.position = position


TokenKind = Literal["word", "string", "number", "param", "op", "punct", "end"]


@dataclass(frozen=True)
class Token:
    """One lexical token; ``value`` is unescaped for strings and stripped of ``$`` for params."""

    kind: TokenKind
    value: str
    position: int


_TOKEN_RE = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<number>-?[0-9]+(?:\.[0-9]+)?(?![A-Za-z_]))
  | (?P<param>\$[A-Za-z0-9_]+)
  | (?P<op><=|>=|!=|=|<|>)
  | (?P<punct>[().,|])
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    """,
    re.VERBOSE,
)


def tokenize(text: str) -> list[Token]:
    """Split an expression into tokens, raising FilterSyntaxError at the first bad character."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            if text[pos] == '"':
                raise FilterSyntaxError("unterminated string", pos)
            raise FilterSyntaxError(f"unexpected character {text[pos]!r}", pos)
        kind = m.lastgroup
        raw = m.group()
        if kind == "string":
            tokens.append(Token("string", re.sub(r"\\(.)", r"\1", raw[1:-1]), pos))
        elif kind == "param":
            tokens.append(Token("param", raw[1:], pos))
        elif kind in ("number", "op", "punct", "word"):
            tokens.append(Token(kind, raw, pos))  # type: ignore[arg-type]
        pos = m.end()
    tokens.append(Token("end", "", len(text)))
    return tokens
