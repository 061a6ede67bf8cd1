-- The daily trend view on PostgreSQL (see views.sql for the other views).
--
-- daily_emotion_trend: one row per ad and UTC day on which faces of the ad were processed.
--   campaign, ad
--   day                 the UTC calendar day of processed_at (DATE), computed as CAST(timezone('UTC', processed_at) AS DATE)
--   faces               faces of the ad's images processed that day
--   count_<e>, share_<e>, valence, dominant_emotion    as in ad_emotion_summary, over that day's faces

DROP VIEW IF EXISTS daily_emotion_trend;
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
JOIN campaigns c ON c.id = a.campaign_id;
