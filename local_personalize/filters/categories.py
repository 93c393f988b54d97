"""How filters read categorical fields: each value may hold several, ``|``-separated."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ..data import Column

MULTI_VALUE_SEPARATOR = "|"
"""How a categorical field's several values are joined in the data, as in the service."""


class Categorical:
    """A categorical column seen as sets of ``|``-separated values, for any-of matching.

    Built here rather than in data.py so the dataset containers stay format-agnostic;
    work is per vocabulary entry, so matching stays one vectorised lookup per request.
    """

    def __init__(self, column: Column) -> None:
        assert column.codes is not None
        self.codes = column.codes
        self.tokens_of_code = tuple(
            frozenset(v.split(MULTI_VALUE_SEPARATOR)) for v in column.vocabulary
        )
        by_token: dict[str, list[int]] = {}
        for code, tokens in enumerate(self.tokens_of_code):
            for token in tokens:
                by_token.setdefault(token, []).append(code)
        self.codes_of_token = {t: np.asarray(c, dtype=np.int64) for t, c in by_token.items()}

    def mask(self, wanted: list[str]) -> NDArray[np.bool_]:
        # One spare slot keeps any out-of-vocabulary code (-1) unmatched.
        hit = np.zeros(len(self.tokens_of_code) + 1, dtype=bool)
        for w in wanted:
            codes = self.codes_of_token.get(w)
            if codes is not None:
                hit[codes] = True
        result: NDArray[np.bool_] = hit[self.codes]
        return result

    def tokens(self, row: int) -> frozenset[str]:
        code = int(self.codes[row])
        return self.tokens_of_code[code] if 0 <= code < len(self.tokens_of_code) else frozenset()
