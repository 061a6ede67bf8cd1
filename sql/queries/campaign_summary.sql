-- Campaigns side by side: per campaign the ads and images stored, failed images, faces, the share of
-- faces per apparent expression, the mean probability of happy, the valence and the dominant expression,
-- over all the campaign's faces (an ad with more faces weighs more).
-- Source: the view campaign_emotion_summary. Runs unchanged on SQLite and PostgreSQL.
-- Same numbers as emotion_batch.aggregate.campaign_summary (tests/test_sql_analytics.py).
SELECT
    campaign,
    ads,
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
    mean_p_happy,
    valence,
    dominant_emotion
FROM campaign_emotion_summary
ORDER BY campaign;
