-- Images that failed and why: every image that could not be used (status unreadable: corrupt, truncated,
-- empty or not an image; unsupported: too many pixels), with the error text naming the file, when it was
-- processed and the run (runs.id) that recorded it. Images without a face are not failures (status no_face).
-- Source: the view failed_images. Runs unchanged on SQLite and PostgreSQL.
-- Same rows as emotion_batch.aggregate.load_images with status in FAILED_STATUSES (tests/test_sql_analytics.py).
SELECT
    campaign,
    ad,
    image_path,
    status,
    error,
    processed_at,
    run_id
FROM failed_images
ORDER BY campaign, ad, image_path;
