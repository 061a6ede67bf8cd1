"""Analyst views (per-ad and per-campaign summaries, daily trend, failed images) and their indexes.

The view SQL is frozen here as it was at this revision; ``sql/views*.sql`` hold the current reference copy.

Revision ID: 0002
Revises: 0001
Create Date: 2026-05-20
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

AD_EMOTION_SUMMARY = """
CREATE VIEW ad_emotion_summary AS
SELECT
    c.name AS campaign,
    a.name AS ad,
    im.images,
    im.images_ok,
    im.images_no_face,
    im.images_failed,
    COALESCE(fa.faces, 0) AS faces,
    COALESCE(fa.count_angry, 0) AS count_angry,
    COALESCE(fa.count_disgust, 0) AS count_disgust,
    COALESCE(fa.count_fear, 0) AS count_fear,
    COALESCE(fa.count_happy, 0) AS count_happy,
    COALESCE(fa.count_neutral, 0) AS count_neutral,
    COALESCE(fa.count_sad, 0) AS count_sad,
    COALESCE(fa.count_surprise, 0) AS count_surprise,
    CAST(fa.count_angry AS DOUBLE PRECISION) / fa.faces AS share_angry,
    CAST(fa.count_disgust AS DOUBLE PRECISION) / fa.faces AS share_disgust,
    CAST(fa.count_fear AS DOUBLE PRECISION) / fa.faces AS share_fear,
    CAST(fa.count_happy AS DOUBLE PRECISION) / fa.faces AS share_happy,
    CAST(fa.count_neutral AS DOUBLE PRECISION) / fa.faces AS share_neutral,
    CAST(fa.count_sad AS DOUBLE PRECISION) / fa.faces AS share_sad,
    CAST(fa.count_surprise AS DOUBLE PRECISION) / fa.faces AS share_surprise,
    fa.mean_p_angry,
    fa.mean_p_disgust,
    fa.mean_p_fear,
    fa.mean_p_happy,
    fa.mean_p_neutral,
    fa.mean_p_sad,
    fa.mean_p_surprise,
    CAST(fa.count_happy - fa.count_angry - fa.count_disgust - fa.count_fear - fa.count_sad AS DOUBLE PRECISION) / fa.faces AS valence,
    CASE
        WHEN fa.count_angry >= fa.count_disgust AND fa.count_angry >= fa.count_fear AND fa.count_angry >= fa.count_happy AND fa.count_angry >= fa.count_neutral AND fa.count_angry >= fa.count_sad AND fa.count_angry >= fa.count_surprise THEN 'angry'
        WHEN fa.count_disgust > fa.count_angry AND fa.count_disgust >= fa.count_fear AND fa.count_disgust >= fa.count_happy AND fa.count_disgust >= fa.count_neutral AND fa.count_disgust >= fa.count_sad AND fa.count_disgust >= fa.count_surprise THEN 'disgust'
        WHEN fa.count_fear > fa.count_angry AND fa.count_fear > fa.count_disgust AND fa.count_fear >= fa.count_happy AND fa.count_fear >= fa.count_neutral AND fa.count_fear >= fa.count_sad AND fa.count_fear >= fa.count_surprise THEN 'fear'
        WHEN fa.count_happy > fa.count_angry AND fa.count_happy > fa.count_disgust AND fa.count_happy > fa.count_fear AND fa.count_happy >= fa.count_neutral AND fa.count_happy >= fa.count_sad AND fa.count_happy >= fa.count_surprise THEN 'happy'
        WHEN fa.count_neutral > fa.count_angry AND fa.count_neutral > fa.count_disgust AND fa.count_neutral > fa.count_fear AND fa.count_neutral > fa.count_happy AND fa.count_neutral >= fa.count_sad AND fa.count_neutral >= fa.count_surprise THEN 'neutral'
        WHEN fa.count_sad > fa.count_angry AND fa.count_sad > fa.count_disgust AND fa.count_sad > fa.count_fear AND fa.count_sad > fa.count_happy AND fa.count_sad > fa.count_neutral AND fa.count_sad >= fa.count_surprise THEN 'sad'
        WHEN fa.count_surprise > fa.count_angry AND fa.count_surprise > fa.count_disgust AND fa.count_surprise > fa.count_fear AND fa.count_surprise > fa.count_happy AND fa.count_surprise > fa.count_neutral AND fa.count_surprise > fa.count_sad THEN 'surprise'
    END AS dominant_emotion
FROM (
    SELECT ad_id,
           count(*) AS images,
           sum(CASE WHEN status = 'ok' THEN 1 ELSE 0 END) AS images_ok,
           sum(CASE WHEN status = 'no_face' THEN 1 ELSE 0 END) AS images_no_face,
           sum(CASE WHEN status IN ('unreadable', 'unsupported') THEN 1 ELSE 0 END) AS images_failed
    FROM images
    GROUP BY ad_id
) im
JOIN ads a ON a.id = im.ad_id
JOIN campaigns c ON c.id = a.campaign_id
LEFT JOIN (
    SELECT i.ad_id,
           count(*) AS faces,
           sum(CASE WHEN f.top_emotion = 'angry' THEN 1 ELSE 0 END) AS count_angry,
           sum(CASE WHEN f.top_emotion = 'disgust' THEN 1 ELSE 0 END) AS count_disgust,
           sum(CASE WHEN f.top_emotion = 'fear' THEN 1 ELSE 0 END) AS count_fear,
           sum(CASE WHEN f.top_emotion = 'happy' THEN 1 ELSE 0 END) AS count_happy,
           sum(CASE WHEN f.top_emotion = 'neutral' THEN 1 ELSE 0 END) AS count_neutral,
           sum(CASE WHEN f.top_emotion = 'sad' THEN 1 ELSE 0 END) AS count_sad,
           sum(CASE WHEN f.top_emotion = 'surprise' THEN 1 ELSE 0 END) AS count_surprise,
           avg(f.p_angry) AS mean_p_angry,
           avg(f.p_disgust) AS mean_p_disgust,
           avg(f.p_fear) AS mean_p_fear,
           avg(f.p_happy) AS mean_p_happy,
           avg(f.p_neutral) AS mean_p_neutral,
           avg(f.p_sad) AS mean_p_sad,
           avg(f.p_surprise) AS mean_p_surprise
    FROM faces f
    JOIN images i ON i.id = f.image_id
    GROUP BY i.ad_id
) fa ON fa.ad_id = im.ad_id
"""

CAMPAIGN_EMOTION_SUMMARY = """
CREATE VIEW campaign_emotion_summary AS
SELECT
    c.name AS campaign,
    im.ads,
    im.images,
    im.images_ok,
    im.images_no_face,
    im.images_failed,
    COALESCE(fa.faces, 0) AS faces,
    COALESCE(fa.count_angry, 0) AS count_angry,
    COALESCE(fa.count_disgust, 0) AS count_disgust,
    COALESCE(fa.count_fear, 0) AS count_fear,
    COALESCE(fa.count_happy, 0) AS count_happy,
    COALESCE(fa.count_neutral, 0) AS count_neutral,
    COALESCE(fa.count_sad, 0) AS count_sad,
    COALESCE(fa.count_surprise, 0) AS count_surprise,
    CAST(fa.count_angry AS DOUBLE PRECISION) / fa.faces AS share_angry,
    CAST(fa.count_disgust AS DOUBLE PRECISION) / fa.faces AS share_disgust,
    CAST(fa.count_fear AS DOUBLE PRECISION) / fa.faces AS share_fear,
    CAST(fa.count_happy AS DOUBLE PRECISION) / fa.faces AS share_happy,
    CAST(fa.count_neutral AS DOUBLE PRECISION) / fa.faces AS share_neutral,
    CAST(fa.count_sad AS DOUBLE PRECISION) / fa.faces AS share_sad,
    CAST(fa.count_surprise AS DOUBLE PRECISION) / fa.faces AS share_surprise,
    fa.mean_p_angry,
    fa.mean_p_disgust,
    fa.mean_p_fear,
    fa.mean_p_happy,
    fa.mean_p_neutral,
    fa.mean_p_sad,
    fa.mean_p_surprise,
    CAST(fa.count_happy - fa.count_angry - fa.count_disgust - fa.count_fear - fa.count_sad AS DOUBLE PRECISION) / fa.faces AS valence,
    CASE
        WHEN fa.count_angry >= fa.count_disgust AND fa.count_angry >= fa.count_fear AND fa.count_angry >= fa.count_happy AND fa.count_angry >= fa.count_neutral AND fa.count_angry >= fa.count_sad AND fa.count_angry >= fa.count_surprise THEN 'angry'
        WHEN fa.count_disgust > fa.count_angry AND fa.count_disgust >= fa.count_fear AND fa.count_disgust >= fa.count_happy AND fa.count_disgust >= fa.count_neutral AND fa.count_disgust >= fa.count_sad AND fa.count_disgust >= fa.count_surprise THEN 'disgust'
        WHEN fa.count_fear > fa.count_angry AND fa.count_fear > fa.count_disgust AND fa.count_fear >= fa.count_happy AND fa.count_fear >= fa.count_neutral AND fa.count_fear >= fa.count_sad AND fa.count_fear >= fa.count_surprise THEN 'fear'
        WHEN fa.count_happy > fa.count_angry AND fa.count_happy > fa.count_disgust AND fa.count_happy > fa.count_fear AND fa.count_happy >= fa.count_neutral AND fa.count_happy >= fa.count_sad AND fa.count_happy >= fa.count_surprise THEN 'happy'
        WHEN fa.count_neutral > fa.count_angry AND fa.count_neutral > fa.count_disgust AND fa.count_neutral > fa.count_fear AND fa.count_neutral > fa.count_happy AND fa.count_neutral >= fa.count_sad AND fa.count_neutral >= fa.count_surprise THEN 'neutral'
        WHEN fa.count_sad > fa.count_angry AND fa.count_sad > fa.count_disgust AND fa.count_sad > fa.count_fear AND fa.count_sad > fa.count_happy AND fa.count_sad > fa.count_neutral AND fa.count_sad >= fa.count_surprise THEN 'sad'
        WHEN fa.count_surprise > fa.count_angry AND fa.count_surprise > fa.count_disgust AND fa.count_surprise > fa.count_fear AND fa.count_surprise > fa.count_happy AND fa.count_surprise > fa.count_neutral AND fa.count_surprise > fa.count_sad THEN 'surprise'
    END AS dominant_emotion
FROM (
    SELECT a.campaign_id,
           count(DISTINCT i.ad_id) AS ads,
           count(*) AS images,
           sum(CASE WHEN i.status = 'ok' THEN 1 ELSE 0 END) AS images_ok,
           sum(CASE WHEN i.status = 'no_face' THEN 1 ELSE 0 END) AS images_no_face,
           sum(CASE WHEN i.status IN ('unreadable', 'unsupported') THEN 1 ELSE 0 END) AS images_failed
    FROM images i
    JOIN ads a ON a.id = i.ad_id
    GROUP BY a.campaign_id
) im
JOIN campaigns c ON c.id = im.campaign_id
LEFT JOIN (
    SELECT a.campaign_id,
           count(*) AS faces,
           sum(CASE WHEN f.top_emotion = 'angry' THEN 1 ELSE 0 END) AS count_angry,
           sum(CASE WHEN f.top_emotion = 'disgust' THEN 1 ELSE 0 END) AS count_disgust,
           sum(CASE WHEN f.top_emotion = 'fear' THEN 1 ELSE 0 END) AS count_fear,
           sum(CASE WHEN f.top_emotion = 'happy' THEN 1 ELSE 0 END) AS count_happy,
           sum(CASE WHEN f.top_emotion = 'neutral' THEN 1 ELSE 0 END) AS count_neutral,
           sum(CASE WHEN f.top_emotion = 'sad' THEN 1 ELSE 0 END) AS count_sad,
           sum(CASE WHEN f.top_emotion = 'surprise' THEN 1 ELSE 0 END) AS count_surprise,
           avg(f.p_angry) AS mean_p_angry,
           avg(f.p_disgust) AS mean_p_disgust,
           avg(f.p_fear) AS mean_p_fear,
           avg(f.p_happy) AS mean_p_happy,
           avg(f.p_neutral) AS mean_p_neutral,
           avg(f.p_sad) AS mean_p_sad,
           avg(f.p_surprise) AS mean_p_surprise
    FROM faces f
    JOIN images i ON i.id = f.image_id
    JOIN ads a ON a.id = i.ad_id
    GROUP BY a.campaign_id
) fa ON fa.campaign_id = im.campaign_id
"""

FAILED_IMAGES = """
CREATE VIEW failed_images AS
SELECT
    c.name AS campaign,
    a.name AS ad,
    i.path AS image_path,
    i.status,
    i.error,
    i.size_bytes,
    i.processed_at,
    i.run_id
FROM images i
JOIN ads a ON a.id = i.ad_id
JOIN campaigns c ON c.id = a.campaign_id
WHERE i.status IN ('unreadable', 'unsupported')
"""

# The UTC calendar day is spelt differently by the two engines.
DAILY_EMOTION_TREND = {
    "sqlite": """
CREATE VIEW daily_emotion_trend AS
SELECT
    c.name AS campaign,
    a.name AS ad,
    d.day,
    d.faces,
    d.count_angry,
    d.count_disgust,
    d.count_fear,
    d.count_happy,
    d.count_neutral,
    d.count_sad,
    d.count_surprise,
    CAST(d.count_angry AS DOUBLE PRECISION) / d.faces AS share_angry,
    CAST(d.count_disgust AS DOUBLE PRECISION) / d.faces AS share_disgust,
    CAST(d.count_fear AS DOUBLE PRECISION) / d.faces AS share_fear,
    CAST(d.count_happy AS DOUBLE PRECISION) / d.faces AS share_happy,
    CAST(d.count_neutral AS DOUBLE PRECISION) / d.faces AS share_neutral,
    CAST(d.count_sad AS DOUBLE PRECISION) / d.faces AS share_sad,
    CAST(d.count_surprise AS DOUBLE PRECISION) / d.faces AS share_surprise,
    CAST(d.count_happy - d.count_angry - d.count_disgust - d.count_fear - d.count_sad AS DOUBLE PRECISION) / d.faces AS valence,
    CASE
        WHEN d.count_angry >= d.count_disgust AND d.count_angry >= d.count_fear AND d.count_angry >= d.count_happy AND d.count_angry >= d.count_neutral AND d.count_angry >= d.count_sad AND d.count_angry >= d.count_surprise THEN 'angry'
        WHEN d.count_disgust > d.count_angry AND d.count_disgust >= d.count_fear AND d.count_disgust >= d.count_happy AND d.count_disgust >= d.count_neutral AND d.count_disgust >= d.count_sad AND d.count_disgust >= d.count_surprise THEN 'disgust'
        WHEN d.count_fear > d.count_angry AND d.count_fear > d.count_disgust AND d.count_fear >= d.count_happy AND d.count_fear >= d.count_neutral AND d.count_fear >= d.count_sad AND d.count_fear >= d.count_surprise THEN 'fear'
        WHEN d.count_happy > d.count_angry AND d.count_happy > d.count_disgust AND d.count_happy > d.count_fear AND d.count_happy >= d.count_neutral AND d.count_happy >= d.count_sad AND d.count_happy >= d.count_surprise THEN 'happy'
        WHEN d.count_neutral > d.count_angry AND d.count_neutral > d.count_disgust AND d.count_neutral > d.count_fear AND d.count_neutral > d.count_happy AND d.count_neutral >= d.count_sad AND d.count_neutral >= d.count_surprise THEN 'neutral'
        WHEN d.count_sad > d.count_angry AND d.count_sad > d.count_disgust AND d.count_sad > d.count_fear AND d.count_sad > d.count_happy AND d.count_sad > d.count_neutral AND d.count_sad >= d.count_surprise THEN 'sad'
        WHEN d.count_surprise > d.count_angry AND d.count_surprise > d.count_disgust AND d.count_surprise > d.count_fear AND d.count_surprise > d.count_happy AND d.count_surprise > d.count_neutral AND d.count_surprise > d.count_sad THEN 'surprise'
    END AS dominant_emotion
FROM (
    SELECT i.ad_id,
           date(i.processed_at) AS day,
           count(*) AS faces,
           sum(CASE WHEN f.top_emotion = 'angry' THEN 1 ELSE 0 END) AS count_angry,
           sum(CASE WHEN f.top_emotion = 'disgust' THEN 1 ELSE 0 END) AS count_disgust,
           sum(CASE WHEN f.top_emotion = 'fear' THEN 1 ELSE 0 END) AS count_fear,
           sum(CASE WHEN f.top_emotion = 'happy' THEN 1 ELSE 0 END) AS count_happy,
           sum(CASE WHEN f.top_emotion = 'neutral' THEN 1 ELSE 0 END) AS count_neutral,
           sum(CASE WHEN f.top_emotion = 'sad' THEN 1 ELSE 0 END) AS count_sad,
           sum(CASE WHEN f.top_emotion = 'surprise' THEN 1 ELSE 0 END) AS count_surprise
    FROM faces f
    JOIN images i ON i.id = f.image_id
    GROUP BY i.ad_id, date(i.processed_at)
) d
JOIN ads a ON a.id = d.ad_id
JOIN campaigns c ON c.id = a.campaign_id
""",
    "postgresql": """
CREATE VIEW daily_emotion_trend AS
SELECT
    c.name AS campaign,
    a.name AS ad,
    d.day,
    d.faces,
    d.count_angry,
    d.count_disgust,
    d.count_fear,
    d.count_happy,
    d.count_neutral,
    d.count_sad,
    d.count_surprise,
    CAST(d.count_angry AS DOUBLE PRECISION) / d.faces AS share_angry,
    CAST(d.count_disgust AS DOUBLE PRECISION) / d.faces AS share_disgust,
    CAST(d.count_fear AS DOUBLE PRECISION) / d.faces AS share_fear,
    CAST(d.count_happy AS DOUBLE PRECISION) / d.faces AS share_happy,
    CAST(d.count_neutral AS DOUBLE PRECISION) / d.faces AS share_neutral,
    CAST(d.count_sad AS DOUBLE PRECISION) / d.faces AS share_sad,
    CAST(d.count_surprise AS DOUBLE PRECISION) / d.faces AS share_surprise,
    CAST(d.count_happy - d.count_angry - d.count_disgust - d.count_fear - d.count_sad AS DOUBLE PRECISION) / d.faces AS valence,
    CASE
        WHEN d.count_angry >= d.count_disgust AND d.count_angry >= d.count_fear AND d.count_angry >= d.count_happy AND d.count_angry >= d.count_neutral AND d.count_angry >= d.count_sad AND d.count_angry >= d.count_surprise THEN 'angry'
        WHEN d.count_disgust > d.count_angry AND d.count_disgust >= d.count_fear AND d.count_disgust >= d.count_happy AND d.count_disgust >= d.count_neutral AND d.count_disgust >= d.count_sad AND d.count_disgust >= d.count_surprise THEN 'disgust'
        WHEN d.count_fear > d.count_angry AND d.count_fear > d.count_disgust AND d.count_fear >= d.count_happy AND d.count_fear >= d.count_neutral AND d.count_fear >= d.count_sad AND d.count_fear >= d.count_surprise THEN 'fear'
        WHEN d.count_happy > d.count_angry AND d.count_happy > d.count_disgust AND d.count_happy > d.count_fear AND d.count_happy >= d.count_neutral AND d.count_happy >= d.count_sad AND d.count_happy >= d.count_surprise THEN 'happy'
        WHEN d.count_neutral > d.count_angry AND d.count_neutral > d.count_disgust AND d.count_neutral > d.count_fear AND d.count_neutral > d.count_happy AND d.count_neutral >= d.count_sad AND d.count_neutral >= d.count_surprise THEN 'neutral'
        WHEN d.count_sad > d.count_angry AND d.count_sad > d.count_disgust AND d.count_sad > d.count_fear AND d.count_sad > d.count_happy AND d.count_sad > d.count_neutral AND d.count_sad >= d.count_surprise THEN 'sad'
        WHEN d.count_surprise > d.count_angry AND d.count_surprise > d.count_disgust AND d.count_surprise > d.count_fear AND d.count_surprise > d.count_happy AND d.count_surprise > d.count_neutral AND d.count_surprise > d.count_sad THEN 'surprise'
    END AS dominant_emotion
FROM (
    SELECT i.ad_id,
           CAST(timezone('UTC', i.processed_at) AS DATE) AS day,
           count(*) AS faces,
           sum(CASE WHEN f.top_emotion = 'angry' THEN 1 ELSE 0 END) AS count_angry,
           sum(CASE WHEN f.top_emotion = 'disgust' THEN 1 ELSE 0 END) AS count_disgust,
           sum(CASE WHEN f.top_emotion = 'fear' THEN 1 ELSE 0 END) AS count_fear,
           sum(CASE WHEN f.top_emotion = 'happy' THEN 1 ELSE 0 END) AS count_happy,
           sum(CASE WHEN f.top_emotion = 'neutral' THEN 1 ELSE 0 END) AS count_neutral,
           sum(CASE WHEN f.top_emotion = 'sad' THEN 1 ELSE 0 END) AS count_sad,
           sum(CASE WHEN f.top_emotion = 'surprise' THEN 1 ELSE 0 END) AS count_surprise
    FROM faces f
    JOIN images i ON i.id = f.image_id
    GROUP BY i.ad_id, CAST(timezone('UTC', i.processed_at) AS DATE)
) d
JOIN ads a ON a.id = d.ad_id
JOIN campaigns c ON c.id = a.campaign_id
""",
}

VIEWS = ("ad_emotion_summary", "campaign_emotion_summary", "failed_images", "daily_emotion_trend")


def upgrade() -> None:
    dialect = op.get_context().dialect.name
    if dialect not in DAILY_EMOTION_TREND:
        raise NotImplementedError(f"dialect must be one of {sorted(DAILY_EMOTION_TREND)}. Received: dialect={dialect!r}")
    # prune --older-than and the runs listing; the views' joins use the foreign-key indexes of 0001
    op.create_index("ix_runs_started_at", "runs", ["started_at"])
    op.execute(AD_EMOTION_SUMMARY)
    op.execute(CAMPAIGN_EMOTION_SUMMARY)
    op.execute(FAILED_IMAGES)
    op.execute(DAILY_EMOTION_TREND[dialect])


def downgrade() -> None:
    for view in reversed(VIEWS):
        op.execute(f"DROP VIEW IF EXISTS {view}")
    op.drop_index("ix_runs_started_at", table_name="runs")
