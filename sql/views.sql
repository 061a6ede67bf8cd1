-- Analyst views of emotion_batch: a stable interface that later schema changes keep.
-- Both are created by `emotion-batch run` (and `emotion-batch db init`) on SQLite and PostgreSQL.
--
-- face_results: one row per detected face.
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
JOIN campaigns c ON c.id = a.campaign_id;
