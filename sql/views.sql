-- Analyst views of emotion_batch: a stable interface that later schema changes keep (columns are only
-- ever added). The schema migrations create them on SQLite and PostgreSQL (`emotion-batch run` on an
-- empty database, `emotion-batch db upgrade` on an older one). This file is their reference copy: a test
-- fails when the views in a migrated database and this file disagree. `daily_emotion_trend` needs the
-- UTC calendar day, which the two engines spell differently: it is in views.sqlite.sql and
-- views.postgresql.sql. Times are UTC. The same numbers come out of emotion_batch/aggregate.py.
--
-- face_results: one row per detected face (the flat face-level view).
--   campaign, ad        folder names under ROOT
--   image_path          path of the image relative to ROOT (forward slashes)
--   face_index          0-based index of the face in its image (detector order, left to right)
--   x, y, w, h          face box in pixels of the EXIF-oriented image
--   detection_score     the detector's confidence in [0, 1]
--   top_emotion         the apparent expression with the highest probability
--   p_angry .. p_surprise   the seven class probabilities (they sum to 1)
--   model_id            classifier that produced the probabilities (name@sha256 prefix)
--   processed_at        UTC time the image was processed
--
-- image_results: one row per image file, also those without a usable face.
--   status              ok | no_face | unreadable | unsupported
--   error               why the image was not usable (NULL when status = ok)
--   faces               number of faces stored for the image
--
-- ad_emotion_summary: one row per ad with at least one image.
--   campaign, ad
--   images              image files stored for the ad
--   images_ok, images_no_face, images_failed    by status (failed = unreadable + unsupported)
--   faces               faces found in the ad's images
--   count_<e>           faces whose top emotion is e, for e in angry disgust fear happy neutral sad surprise
--   share_<e>           count_<e> / faces (NULL without faces, the seven shares of an ad sum to 1)
--   mean_p_<e>          mean probability of e over the ad's faces (NULL without faces)
--   valence             share_happy - (share_angry + share_disgust + share_fear + share_sad), from -1
--                       (every face negative) to +1 (every face happy). Neutral and surprise count as
--                       neither. NULL without faces.
--   dominant_emotion    the emotion with the highest count, a tie going to the earlier one in the list above
--
-- campaign_emotion_summary: one row per campaign with at least one image, the columns of
--   ad_emotion_summary with campaign in place of (campaign, ad) and
--   ads                 ads of the campaign with at least one image
--   Shares, means and valence are over all the campaign's faces (an ad with more faces weighs more).
--
-- failed_images: one row per image that could not be used (status unreadable or unsupported).
--   campaign, ad, image_path, status, error (why), size_bytes, processed_at, run_id (the runs row)
--
-- ad_second_trace: one row per ad and second of the ad in which at least one viewer's face was seen
--   (viewer recordings, tables videos and video_frames). A viewer-second is one recording in one second:
--   the mean of its sampled frames' probabilities that second, whose top class is the viewer's vote
--   (a tie going to the earlier emotion), so every viewer counts once a second whatever --video-fps.
--   campaign, ad
--   second              the second of the ad: time_ms / 1000 of video_frames (0 = the ad's first second)
--   viewers             recordings with the viewer's face in that second
--   frames              sampled frames with the viewer's face in that second, over all viewers
--   count_<e>           viewers whose vote is e
--   share_<e>           count_<e> / viewers (the seven shares of a second sum to 1)
--   mean_p_<e>          mean over the viewers of their mean probability of e
--   valence             share_happy - (share_angry + share_disgust + share_fear + share_sad), as above
--   Seconds without viewers have no row. The minimum-group rule (--min-faces) is the reader's to apply:
--   reports grey out seconds with fewer viewers. The same numbers come out of
--   emotion_batch/video/trace.py (second_trace), which also gives the spread of valence.

DROP VIEW IF EXISTS face_results;
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
JOIN campaigns c ON c.id = a.campaign_id;

DROP VIEW IF EXISTS image_results;
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
JOIN campaigns c ON c.id = a.campaign_id;;

DROP VIEW IF EXISTS ad_emotion_summary;
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
) fa ON fa.ad_id = im.ad_id;

DROP VIEW IF EXISTS campaign_emotion_summary;
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
) fa ON fa.campaign_id = im.campaign_id;

DROP VIEW IF EXISTS failed_images;
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
WHERE i.status IN ('unreadable', 'unsupported');

DROP VIEW IF EXISTS ad_second_trace;
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
JOIN campaigns c ON c.id = a.campaign_id;
