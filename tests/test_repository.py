"""The bulk write path (``store.repository.write_images``): COPY on PostgreSQL, Core bulk INSERTs on SQLite,
the same rows either way, timestamps in UTC."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from emotion_batch.labels import EMOTIONS
from emotion_batch.store.models import FaceRow, ImageRow, PROB_COLUMNS
from emotion_batch.store.repository import ImageRecord, ad_id_for, known_images, write_images
from emotion_batch.store.session import init_db, make_engine

UTC = dt.timezone.utc


def _records(ad_id: int, n: int, rng) -> list[ImageRecord]:
    records = []
    for i in range(n):
        k = i % 4
        probs = rng.dirichlet(np.ones(len(EMOTIONS)), size=k) if k else None
        faces = [(1.5 * j, 2.0, 30.0 + j, 31.0, 0.5 + j / 10) for j in range(k)]
        captured = dt.datetime(2024, 3, 1, 12, i % 60) if i % 2 else dt.datetime(
            2024, 3, 1, 12, i % 60, tzinfo=dt.timezone(dt.timedelta(hours=2)))
        records.append(ImageRecord(ad_id=ad_id, path=f"c/a/{i:04d}.jpg", size_bytes=100 + i, mtime_ns=i,
                                   sha256=f"{i:064x}", status="ok" if k else "no_face", error=None, width=640,
                                   height=480, captured_at=captured, faces=faces, probs=probs))
    return records


def test_bulk_write_stores_every_value(db_url):
    engine = make_engine(db_url)
    init_db(engine)
    rng = np.random.default_rng(0)
    with Session(engine) as session, session.begin():
        ad_id = ad_id_for(session, "c", "a")
        records = _records(ad_id, 1200, rng)  # more than one multi-row INSERT batch of images
        written = write_images(session, None, records, model_id="m@1")
    assert written == sum(len(r.faces) for r in records)
    with Session(engine) as session:
        images = {i.path: i for i in session.scalars(select(ImageRow))}
        faces = session.scalars(select(FaceRow).order_by(FaceRow.image_id, FaceRow.face_index)).all()
    assert len(images) == 1200 and len(faces) == written
    for record in records:
        row = images[record.path]
        assert (row.ad_id, row.size_bytes, row.mtime_ns, row.status, row.faces_count) == (
            ad_id, record.size_bytes, record.mtime_ns, record.status, len(record.faces))
        want = record.captured_at if record.captured_at.tzinfo else record.captured_at.replace(tzinfo=UTC)
        assert row.captured_at == want and row.captured_at.tzinfo == UTC  # naive is UTC; aware kept as instant
        assert row.processed_at.tzinfo == UTC
    by_image = {}
    for face in faces:
        by_image.setdefault(face.image_id, []).append(face)
    path_of = {row.id: path for path, row in images.items()}
    for image_id, stored in by_image.items():
        record = next(r for r in records if r.path == path_of[image_id])
        for j, face in enumerate(stored):
            assert face.face_index == j and (face.x, face.w) == (record.faces[j][0], record.faces[j][2])
            probs = [getattr(face, c) for c in PROB_COLUMNS]
            assert probs == pytest.approx(list(record.probs[j]), abs=1e-12)
            assert face.top_emotion == EMOTIONS[int(np.argmax(record.probs[j]))]
    engine.dispose()


def test_rewriting_a_known_image_replaces_its_faces(db_url):
    engine = make_engine(db_url)
    init_db(engine)
    rng = np.random.default_rng(1)
    with Session(engine) as session, session.begin():
        ad_id = ad_id_for(session, "c", "a")
        write_images(session, None, _records(ad_id, 8, rng), model_id="m@1")
    with Session(engine) as session, session.begin():
        known = known_images(session, ad_id)
        again = _records(ad_id, 8, rng)[3:4]  # 3 faces
        again[0].existing_id = known[again[0].path].id
        assert write_images(session, None, again, model_id="m@2") == 3
    with Session(engine) as session:
        assert session.query(ImageRow).count() == 8
        models = session.scalars(select(FaceRow.model_id).join(ImageRow).where(ImageRow.path == again[0].path)).all()
    assert models == ["m@2"] * 3
    engine.dispose()
