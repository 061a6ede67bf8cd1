"""Storing an API result in the batch job's database, under a campaign and ad named in the request.

The caller owns the session and the transaction. An uploaded image is stored as
``api/<first 16 hex digits of its sha256>/<file name>`` with no run (``run_id`` NULL), so analysts can tell
API results from batch results; the same file sent again to the same ad replaces its row.
"""

from __future__ import annotations

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..store.models import ImageRow
from ..store.repository import ImageRecord, ad_id_for, known_images, write_images
from .inference import Analysed


def upload_path(analysed: Analysed) -> str:
    return f"api/{analysed.sha256[:16]}/{analysed.filename}"


def store_result(session: Session, analysed: Analysed, probs: np.ndarray, *, campaign: str, ad: str,
                 model_id: str) -> int:
    """Write one analysed upload with its faces; return the image row's id."""
    ad_id = ad_id_for(session, campaign, ad)
    path = upload_path(analysed)
    existing = known_images(session, ad_id).get(path)
    faces = [(f.x, f.y, f.w, f.h, f.score) for f in analysed.faces]
    record = ImageRecord(
        ad_id=ad_id, path=path, size_bytes=analysed.size_bytes, mtime_ns=0, sha256=analysed.sha256,
        status="ok" if faces else "no_face", error=None if faces else f"{analysed.filename}: no face found",
        width=analysed.width, height=analysed.height, faces=faces, probs=probs if faces else None,
        existing_id=existing.id if existing else None,
    )
    write_images(session, None, [record], model_id=model_id)
    return int(session.execute(select(ImageRow.id).where(ImageRow.ad_id == ad_id, ImageRow.path == path)).scalar_one())
