"""Keyset pagination (AIP-158 page tokens over a stable order), in one place.

A list ordered by (sort column, id) pages by remembering the last row's pair:
the next page is every row strictly after it. `after_key` adds that predicate,
the order and the one-extra-row limit that tells whether a next page exists;
`validation.paginate` then cuts the extra row and encodes the next token.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import and_, or_
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import ColumnElement


def after_key(query: Select, sort: ColumnElement, tiebreak: ColumnElement, after: tuple[Any, Any] | None,
              size: int, *, descending: bool = True) -> Select:
    """`query` restricted to rows after `after` = (sort value, tiebreak value), ordered, `size + 1` rows."""
    if after is not None:
        at, key = after
        if descending:
            query = query.where(or_(sort < at, and_(sort == at, tiebreak < key)))
        else:
            query = query.where(or_(sort > at, and_(sort == at, tiebreak > key)))
    order = (sort.desc(), tiebreak.desc()) if descending else (sort.asc(), tiebreak.asc())
    return query.order_by(*order).limit(size + 1)
