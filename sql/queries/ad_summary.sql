-- How did each ad do? One row per ad with at least 10 faces (smaller groups say little, and the reports
-- hide them too): how many images and faces, the share of faces per apparent expression, the valence
-- (share happy minus share angry, disgust, fear and sad, from -1 to +1) and the dominant expression.
-- Source: the view ad_emotion_summary. Runs unchanged on SQLite and PostgreSQL.
-- Same numbers as emotion_batch.aggregate.ad_summary + with_valence (tests/test_sql_analytics.py).
SELECT
    campaign,
    ad,
    images,
    images_failed,
    faces,
    share_angry,
    share_disgust,
    share_fear,
    share_happy,
    share_neutral,
    share_sad,
    share_surprise,
    valence,
    dominant_emotion
FROM ad_emotion_summary
WHERE faces >= 10
ORDER BY campaign, ad;
