-- Daily trend per campaign: for every campaign and UTC day on which its images were processed, the faces
-- found, the share of happy, neutral and negative (angry + disgust + fear + sad) faces, and the valence.
-- Source: the view daily_emotion_trend (one row per ad and day), added up over the campaign's ads.
-- Runs unchanged on SQLite (day is text YYYY-MM-DD) and PostgreSQL (day is a DATE).
-- Same numbers as emotion_batch.aggregate.daily_trend(faces, by=("campaign",)) (tests/test_sql_analytics.py).
SELECT
    campaign,
    day,
    sum(faces) AS faces,
    CAST(sum(count_happy) AS DOUBLE PRECISION) / sum(faces) AS share_happy,
    CAST(sum(count_neutral) AS DOUBLE PRECISION) / sum(faces) AS share_neutral,
    CAST(sum(count_angry + count_disgust + count_fear + count_sad) AS DOUBLE PRECISION) / sum(faces) AS share_negative,
    CAST(sum(count_happy) - sum(count_angry + count_disgust + count_fear + count_sad) AS DOUBLE PRECISION)
        / sum(faces) AS valence
FROM daily_emotion_trend
GROUP BY campaign, day
ORDER BY campaign, day;
