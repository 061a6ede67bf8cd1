"""Baseline: the schema as ``create_all`` made it before migrations existed, with its two views.

A database made by an emotion-batch without migrations holds exactly this; ``emotion-batch db upgrade``
stamps it with this revision and goes on from here.

Revision ID: 0001
Revises:
Create Date: 2026-05-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

FACE_RESULTS = """
CREATE VIEW face_results AS
SELECT
    c.name AS campaign,
    a.name AS ad,
    i.path AS image_path,
    f.face_index,
    f.x, f.y, f.w, f.h,
    f.detection_score,
    f.top_emotion,
    f.p_angry, f.p_disgust, f.p_fear, f.p_happy, f.p_neutral, f.p_sad, f.p_surprise,
    f.model_id,
    i.processed_at
FROM faces f
JOIN images i ON i.id = f.image_id
JOIN ads a ON a.id = i.ad_id
JOIN campaigns c ON c.id = a.campaign_id
"""

IMAGE_RESULTS = """
CREATE VIEW image_results AS
SELECT
    c.name AS campaign,
    a.name AS ad,
    i.path AS image_path,
    i.status,
    i.error,
    i.faces_count AS faces
FROM images i
JOIN ads a ON a.id = i.ad_id
JOIN campaigns c ON c.id = a.campaign_id
"""


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_campaigns"),
        sa.UniqueConstraint("name", name="uq_campaigns_name"),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("root", sa.Text(), nullable=False),
        sa.Column("detector", sa.String(length=32), nullable=False),
        sa.Column("model_id", sa.String(length=128), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("images_seen", sa.Integer(), nullable=False),
        sa.Column("images_processed", sa.Integer(), nullable=False),
        sa.Column("faces", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
    )
    op.create_table(
        "ads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], name="fk_ads_campaign_id_campaigns", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_ads"),
        sa.UniqueConstraint("campaign_id", "name", name="uq_ads_campaign_id_name"),
    )
    op.create_index("ix_ads_campaign_id", "ads", ["campaign_id"])
    op.create_table(
        "images",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ad_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("mtime_ns", sa.BigInteger(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("faces_count", sa.Integer(), nullable=False),
        sa.Column("captured_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["ad_id"], ["ads.id"], name="fk_images_ad_id_ads", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_images_run_id_runs", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_images"),
        sa.UniqueConstraint("ad_id", "path", name="uq_images_ad_id_path"),
    )
    op.create_index("ix_images_ad_id", "images", ["ad_id"])
    op.create_index("ix_images_processed_at", "images", ["processed_at"])
    op.create_index("ix_images_run_id", "images", ["run_id"])
    op.create_index("ix_images_sha256", "images", ["sha256"])
    op.create_index("ix_images_status", "images", ["status"])
    op.create_table(
        "faces",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("face_index", sa.Integer(), nullable=False),
        sa.Column("x", sa.Float(), nullable=False),
        sa.Column("y", sa.Float(), nullable=False),
        sa.Column("w", sa.Float(), nullable=False),
        sa.Column("h", sa.Float(), nullable=False),
        sa.Column("detection_score", sa.Float(), nullable=False),
        sa.Column("p_angry", sa.Float(), nullable=False),
        sa.Column("p_disgust", sa.Float(), nullable=False),
        sa.Column("p_fear", sa.Float(), nullable=False),
        sa.Column("p_happy", sa.Float(), nullable=False),
        sa.Column("p_neutral", sa.Float(), nullable=False),
        sa.Column("p_sad", sa.Float(), nullable=False),
        sa.Column("p_surprise", sa.Float(), nullable=False),
        sa.Column("top_emotion", sa.String(length=16), nullable=False),
        sa.Column("model_id", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(["image_id"], ["images.id"], name="fk_faces_image_id_images", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_faces"),
        sa.UniqueConstraint("image_id", "face_index", name="uq_faces_image_id_face_index"),
    )
    op.create_index("ix_faces_image_id", "faces", ["image_id"])
    op.create_index("ix_faces_top_emotion", "faces", ["top_emotion"])
    op.execute(FACE_RESULTS)
    op.execute(IMAGE_RESULTS)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS image_results")
    op.execute("DROP VIEW IF EXISTS face_results")
    for table in ("faces", "images", "ads", "runs", "campaigns"):
        op.drop_table(table)
