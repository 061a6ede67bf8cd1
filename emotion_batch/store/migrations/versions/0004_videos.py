"""Viewer videos: the tables ``videos`` and ``video_frames`` and the view ``ad_second_trace``.

The view SQL is frozen here as it was at this revision; ``sql/views.sql`` holds the current reference copy.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

AD_SECOND_TRACE = """
CREATE VIEW ad_second_trace AS
SELECT
    c.name AS campaign,
    a.name AS ad,
    s.second,
    s.viewers,
    s.frames,
    s.count_angry,
    s.count_disgust,
    s.count_fear,
    s.count_happy,
    s.count_neutral,
    s.count_sad,
    s.count_surprise,
    CAST(s.count_angry AS DOUBLE PRECISION) / s.viewers AS share_angry,
    CAST(s.count_disgust AS DOUBLE PRECISION) / s.viewers AS share_disgust,
    CAST(s.count_fear AS DOUBLE PRECISION) / s.viewers AS share_fear,
    CAST(s.count_happy AS DOUBLE PRECISION) / s.viewers AS share_happy,
    CAST(s.count_neutral AS DOUBLE PRECISION) / s.viewers AS share_neutral,
    CAST(s.count_sad AS DOUBLE PRECISION) / s.viewers AS share_sad,
    CAST(s.count_surprise AS DOUBLE PRECISION) / s.viewers AS share_surprise,
    s.mean_p_angry,
    s.mean_p_disgust,
    s.mean_p_fear,
    s.mean_p_happy,
    s.mean_p_neutral,
    s.mean_p_sad,
    s.mean_p_surprise,
    CAST(s.count_happy - s.count_angry - s.count_disgust - s.count_fear - s.count_sad AS DOUBLE PRECISION) / s.viewers AS valence
FROM (
    SELECT vs.ad_id,
           vs.second,
           count(*) AS viewers,
           sum(vs.frames) AS frames,
           sum(CASE WHEN vs.vote = 'angry' THEN 1 ELSE 0 END) AS count_angry,
           sum(CASE WHEN vs.vote = 'disgust' THEN 1 ELSE 0 END) AS count_disgust,
           sum(CASE WHEN vs.vote = 'fear' THEN 1 ELSE 0 END) AS count_fear,
           sum(CASE WHEN vs.vote = 'happy' THEN 1 ELSE 0 END) AS count_happy,
           sum(CASE WHEN vs.vote = 'neutral' THEN 1 ELSE 0 END) AS count_neutral,
           sum(CASE WHEN vs.vote = 'sad' THEN 1 ELSE 0 END) AS count_sad,
           sum(CASE WHEN vs.vote = 'surprise' THEN 1 ELSE 0 END) AS count_surprise,
           avg(vs.m_angry) AS mean_p_angry,
           avg(vs.m_disgust) AS mean_p_disgust,
           avg(vs.m_fear) AS mean_p_fear,
           avg(vs.m_happy) AS mean_p_happy,
           avg(vs.m_neutral) AS mean_p_neutral,
           avg(vs.m_sad) AS mean_p_sad,
           avg(vs.m_surprise) AS mean_p_surprise
    FROM (
        SELECT pv.*,
            CASE
                WHEN pv.m_angry >= pv.m_disgust AND pv.m_angry >= pv.m_fear AND pv.m_angry >= pv.m_happy AND pv.m_angry >= pv.m_neutral AND pv.m_angry >= pv.m_sad AND pv.m_angry >= pv.m_surprise THEN 'angry'
                WHEN pv.m_disgust > pv.m_angry AND pv.m_disgust >= pv.m_fear AND pv.m_disgust >= pv.m_happy AND pv.m_disgust >= pv.m_neutral AND pv.m_disgust >= pv.m_sad AND pv.m_disgust >= pv.m_surprise THEN 'disgust'
                WHEN pv.m_fear > pv.m_angry AND pv.m_fear > pv.m_disgust AND pv.m_fear >= pv.m_happy AND pv.m_fear >= pv.m_neutral AND pv.m_fear >= pv.m_sad AND pv.m_fear >= pv.m_surprise THEN 'fear'
                WHEN pv.m_happy > pv.m_angry AND pv.m_happy > pv.m_disgust AND pv.m_happy > pv.m_fear AND pv.m_happy >= pv.m_neutral AND pv.m_happy >= pv.m_sad AND pv.m_happy >= pv.m_surprise THEN 'happy'
                WHEN pv.m_neutral > pv.m_angry AND pv.m_neutral > pv.m_disgust AND pv.m_neutral > pv.m_fear AND pv.m_neutral > pv.m_happy AND pv.m_neutral >= pv.m_sad AND pv.m_neutral >= pv.m_surprise THEN 'neutral'
                WHEN pv.m_sad > pv.m_angry AND pv.m_sad > pv.m_disgust AND pv.m_sad > pv.m_fear AND pv.m_sad > pv.m_happy AND pv.m_sad > pv.m_neutral AND pv.m_sad >= pv.m_surprise THEN 'sad'
                WHEN pv.m_surprise > pv.m_angry AND pv.m_surprise > pv.m_disgust AND pv.m_surprise > pv.m_fear AND pv.m_surprise > pv.m_happy AND pv.m_surprise > pv.m_neutral AND pv.m_surprise > pv.m_sad THEN 'surprise'
            END AS vote
        FROM (
            SELECT v.ad_id,
                   vf.video_id,
                   vf.time_ms / 1000 AS second,
                   count(*) AS frames,
                   avg(vf.p_angry) AS m_angry,
                   avg(vf.p_disgust) AS m_disgust,
                   avg(vf.p_fear) AS m_fear,
                   avg(vf.p_happy) AS m_happy,
                   avg(vf.p_neutral) AS m_neutral,
                   avg(vf.p_sad) AS m_sad,
                   avg(vf.p_surprise) AS m_surprise
            FROM video_frames vf
            JOIN videos v ON v.id = vf.video_id
            WHERE vf.time_ms >= 0
            GROUP BY v.ad_id, vf.video_id, vf.time_ms / 1000
        ) pv
    ) vs
    GROUP BY vs.ad_id, vs.second
) s
JOIN ads a ON a.id = s.ad_id
JOIN campaigns c ON c.id = a.campaign_id
"""


def upgrade() -> None:
    op.create_table(
        "videos",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ad_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("mtime_ns", sa.BigInteger(), nullable=False),
        sa.Column("sidecar_stamp", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("codec", sa.String(length=32), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("rotation", sa.Integer(), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("fps", sa.Float(), nullable=True),
        sa.Column("sample_fps", sa.Float(), nullable=False),
        sa.Column("offset_s", sa.Float(), nullable=True),
        sa.Column("frames_sampled", sa.Integer(), nullable=False),
        sa.Column("frames_with_face", sa.Integer(), nullable=False),
        sa.Column("faces_found", sa.Integer(), nullable=False),
        sa.Column("tracks", sa.Integer(), nullable=False),
        sa.Column("max_faces", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.String(length=128), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["ad_id"], ["ads.id"], name="fk_videos_ad_id_ads", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_videos_run_id_runs", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_videos"),
        sa.UniqueConstraint("ad_id", "path", name="uq_videos_ad_id_path"),
    )
    op.create_index("ix_videos_ad_id", "videos", ["ad_id"])
    op.create_index("ix_videos_processed_at", "videos", ["processed_at"])
    op.create_index("ix_videos_run_id", "videos", ["run_id"])
    op.create_index("ix_videos_sha256", "videos", ["sha256"])
    op.create_index("ix_videos_status", "videos", ["status"])
    op.create_table(
        "video_frames",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("video_id", sa.Integer(), nullable=False),
        sa.Column("time_ms", sa.Integer(), nullable=False),
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
        sa.Column("faces_in_frame", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(["video_id"], ["videos.id"], name="fk_video_frames_video_id_videos",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_video_frames"),
        sa.UniqueConstraint("video_id", "time_ms", name="uq_video_frames_video_id_time_ms"),
    )
    op.create_index("ix_video_frames_video_id", "video_frames", ["video_id"])
    op.execute(AD_SECOND_TRACE)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS ad_second_trace")
    op.drop_index("ix_video_frames_video_id", table_name="video_frames")
    op.drop_table("video_frames")
    for index in ("ix_videos_status", "ix_videos_sha256", "ix_videos_run_id", "ix_videos_processed_at",
                  "ix_videos_ad_id"):
        op.drop_index(index, table_name="videos")
    op.drop_table("videos")
