"""The table ``ad_share_estimates``: the shares the last reports stated, written at report time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, insert
from sqlalchemy.orm import Session

from .models import ShareEstimateRow

__all__ = ["replace_share_estimates"]

#: Rows per INSERT statement.
CHUNK = 1000


def replace_share_estimates(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Replace every row of ``ad_share_estimates`` with ``rows`` (``aggregate.correction.share_estimate_rows``
    of the whole report set, so that the table always states what the last reports stated). The caller
    owns the transaction.

    Returns:
        The number of rows written.
    """
    session.execute(delete(ShareEstimateRow))
    for start in range(0, len(rows), CHUNK):
        session.execute(insert(ShareEstimateRow), list(rows[start : start + CHUNK]))
    return len(rows)
