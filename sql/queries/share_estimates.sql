-- How far do the corrected shares move from the raw ones? One row per ad and apparent expression: the raw
-- share (faces whose most probable expression it is) beside the share corrected for the classifier's
-- known confusions, with its 95 % interval; corrected columns are NULL where the reports kept the raw shares.
-- Source: the table ad_share_estimates, written by every `emotion-batch report` / `run` (the last reports'
-- numbers, replaced each time). Runs unchanged on SQLite and PostgreSQL.
--
-- ad_share_estimates: one row per group, method and expression; groups below --min-faces have none.
--   campaign, ad        folder names; ad is NULL for the rows of a whole campaign (all its faces pooled)
--   model_id            the model id(s) of the group's faces (name@sha256 prefix; several: space-separated)
--   method              raw (classify and count, Wilson interval) | pacc (probabilistic adjusted classify
--                       and count: shares corrected with the model's PublicTest statistics, bootstrap interval)
--   class               the apparent expression (angry disgust fear happy neutral sad surprise)
--   share, lower, upper the share and its 95 % interval; per group and method the seven shares sum to 1
--   faces               faces of the group
--   computed_at         UTC time of the report that wrote the row
SELECT
    r.campaign,
    r.ad,
    r.class,
    r.faces,
    r.share AS raw_share,
    c.method,
    c.share AS corrected_share,
    c.lower AS corrected_lower,
    c.upper AS corrected_upper
FROM ad_share_estimates r
LEFT JOIN ad_share_estimates c
    ON c.campaign = r.campaign AND c.ad = r.ad AND c.class = r.class AND c.method <> 'raw'
WHERE r.method = 'raw' AND r.ad IS NOT NULL
ORDER BY r.campaign, r.ad, r.class;
