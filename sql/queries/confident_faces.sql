-- Faces the model is sure about: every face whose top expression has a probability of at least 0.8, with
-- where it is (campaign, ad, image path, face box in pixels), all seven probabilities, the top expression
-- and the model that produced them. Useful to look at the photos behind a share.
-- Source: the flat face-level view face_results. Runs unchanged on SQLite and PostgreSQL.
-- Same rows as emotion_batch.aggregate.load_faces filtered on the top probability (tests/test_sql_analytics.py).
SELECT
    campaign,
    ad,
    image_path,
    face_index,
    x, y, w, h,
    p_angry, p_disgust, p_fear, p_happy, p_neutral, p_sad, p_surprise,
    top_emotion,
    CASE top_emotion
        WHEN 'angry' THEN p_angry
        WHEN 'disgust' THEN p_disgust
        WHEN 'fear' THEN p_fear
        WHEN 'happy' THEN p_happy
        WHEN 'neutral' THEN p_neutral
        WHEN 'sad' THEN p_sad
        WHEN 'surprise' THEN p_surprise
    END AS top_probability,
    model_id
FROM face_results
WHERE CASE top_emotion
        WHEN 'angry' THEN p_angry
        WHEN 'disgust' THEN p_disgust
        WHEN 'fear' THEN p_fear
        WHEN 'happy' THEN p_happy
        WHEN 'neutral' THEN p_neutral
        WHEN 'sad' THEN p_sad
        WHEN 'surprise' THEN p_surprise
    END >= 0.8
ORDER BY campaign, ad, image_path, face_index;
