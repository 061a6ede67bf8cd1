-- Reference DDL of the emotion_batch results database (PostgreSQL), generated from the SQLAlchemy models
-- (emotion_batch/store/models.py). Do not edit: the schema is created and changed by the Alembic
-- migrations in emotion_batch/store/migrations (`emotion-batch db upgrade`), and the tests fail when this
-- file, the models and the migrations drift apart. Regenerate it with
--   python -c "from emotion_batch.store.schema import reference_schema_sql as s; print(s(), end='')" > sql/schema.sql
-- The views are in views.sql and views.postgresql.sql. Timestamps are UTC (TIMESTAMP WITH TIME ZONE).
-- Constraint names follow one convention: pk_<table>, uq_<table>_<columns>,
-- fk_<table>_<column>_<referred table>, ix_<table>_<column>.

CREATE TABLE ad_share_estimates (
	id SERIAL NOT NULL,
	campaign VARCHAR(512) NOT NULL,
	ad VARCHAR(512),
	model_id TEXT NOT NULL,
	method VARCHAR(16) NOT NULL,
	class VARCHAR(16) NOT NULL,
	share FLOAT NOT NULL,
	lower FLOAT NOT NULL,
	upper FLOAT NOT NULL,
	faces INTEGER NOT NULL,
	computed_at TIMESTAMP WITH TIME ZONE NOT NULL,
	CONSTRAINT pk_ad_share_estimates PRIMARY KEY (id)
);

CREATE INDEX ix_ad_share_estimates_campaign_ad ON ad_share_estimates (campaign, ad);

CREATE TABLE campaigns (
	id SERIAL NOT NULL,
	name VARCHAR(512) NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	CONSTRAINT pk_campaigns PRIMARY KEY (id),
	CONSTRAINT uq_campaigns_name UNIQUE (name)
);

CREATE TABLE runs (
	id SERIAL NOT NULL,
	started_at TIMESTAMP WITH TIME ZONE NOT NULL,
	finished_at TIMESTAMP WITH TIME ZONE,
	status VARCHAR(16) NOT NULL,
	root TEXT NOT NULL,
	detector VARCHAR(32) NOT NULL,
	model_id VARCHAR(128) NOT NULL,
	host VARCHAR(255) NOT NULL,
	pid INTEGER NOT NULL,
	images_seen INTEGER NOT NULL,
	images_processed INTEGER NOT NULL,
	faces INTEGER NOT NULL,
	error TEXT,
	CONSTRAINT pk_runs PRIMARY KEY (id)
);

CREATE INDEX ix_runs_started_at ON runs (started_at);

CREATE TABLE ads (
	id SERIAL NOT NULL,
	campaign_id INTEGER NOT NULL,
	name VARCHAR(512) NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	CONSTRAINT pk_ads PRIMARY KEY (id),
	CONSTRAINT uq_ads_campaign_id_name UNIQUE (campaign_id, name),
	CONSTRAINT fk_ads_campaign_id_campaigns FOREIGN KEY(campaign_id) REFERENCES campaigns (id) ON DELETE CASCADE
);

CREATE INDEX ix_ads_campaign_id ON ads (campaign_id);

CREATE TABLE images (
	id SERIAL NOT NULL,
	ad_id INTEGER NOT NULL,
	run_id INTEGER,
	path TEXT NOT NULL,
	sha256 VARCHAR(64),
	size_bytes BIGINT NOT NULL,
	mtime_ns BIGINT NOT NULL,
	width INTEGER,
	height INTEGER,
	status VARCHAR(16) NOT NULL,
	error TEXT,
	faces_count INTEGER NOT NULL,
	captured_at TIMESTAMP WITH TIME ZONE,
	processed_at TIMESTAMP WITH TIME ZONE NOT NULL,
	CONSTRAINT pk_images PRIMARY KEY (id),
	CONSTRAINT uq_images_ad_id_path UNIQUE (ad_id, path),
	CONSTRAINT fk_images_ad_id_ads FOREIGN KEY(ad_id) REFERENCES ads (id) ON DELETE CASCADE,
	CONSTRAINT fk_images_run_id_runs FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE SET NULL
);

CREATE INDEX ix_images_ad_id ON images (ad_id);

CREATE INDEX ix_images_processed_at ON images (processed_at);

CREATE INDEX ix_images_run_id ON images (run_id);

CREATE INDEX ix_images_sha256 ON images (sha256);

CREATE INDEX ix_images_status ON images (status);

CREATE TABLE videos (
	id SERIAL NOT NULL,
	ad_id INTEGER NOT NULL,
	run_id INTEGER,
	path TEXT NOT NULL,
	sha256 VARCHAR(64),
	size_bytes BIGINT NOT NULL,
	mtime_ns BIGINT NOT NULL,
	sidecar_stamp TEXT,
	status VARCHAR(16) NOT NULL,
	error TEXT,
	codec VARCHAR(32),
	width INTEGER,
	height INTEGER,
	rotation INTEGER,
	duration_s FLOAT,
	fps FLOAT,
	sample_fps FLOAT NOT NULL,
	offset_s FLOAT,
	frames_sampled INTEGER NOT NULL,
	frames_with_face INTEGER NOT NULL,
	faces_found INTEGER NOT NULL,
	tracks INTEGER NOT NULL,
	max_faces INTEGER NOT NULL,
	model_id VARCHAR(128) NOT NULL,
	processed_at TIMESTAMP WITH TIME ZONE NOT NULL,
	CONSTRAINT pk_videos PRIMARY KEY (id),
	CONSTRAINT uq_videos_ad_id_path UNIQUE (ad_id, path),
	CONSTRAINT fk_videos_ad_id_ads FOREIGN KEY(ad_id) REFERENCES ads (id) ON DELETE CASCADE,
	CONSTRAINT fk_videos_run_id_runs FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE SET NULL
);

CREATE INDEX ix_videos_ad_id ON videos (ad_id);

CREATE INDEX ix_videos_processed_at ON videos (processed_at);

CREATE INDEX ix_videos_run_id ON videos (run_id);

CREATE INDEX ix_videos_sha256 ON videos (sha256);

CREATE INDEX ix_videos_status ON videos (status);

CREATE TABLE faces (
	id SERIAL NOT NULL,
	image_id INTEGER NOT NULL,
	face_index INTEGER NOT NULL,
	x FLOAT NOT NULL,
	y FLOAT NOT NULL,
	w FLOAT NOT NULL,
	h FLOAT NOT NULL,
	detection_score FLOAT NOT NULL,
	p_angry FLOAT NOT NULL,
	p_disgust FLOAT NOT NULL,
	p_fear FLOAT NOT NULL,
	p_happy FLOAT NOT NULL,
	p_neutral FLOAT NOT NULL,
	p_sad FLOAT NOT NULL,
	p_surprise FLOAT NOT NULL,
	top_emotion VARCHAR(16) NOT NULL,
	model_id VARCHAR(128) NOT NULL,
	CONSTRAINT pk_faces PRIMARY KEY (id),
	CONSTRAINT uq_faces_image_id_face_index UNIQUE (image_id, face_index),
	CONSTRAINT fk_faces_image_id_images FOREIGN KEY(image_id) REFERENCES images (id) ON DELETE CASCADE
);

CREATE INDEX ix_faces_image_id ON faces (image_id);

CREATE INDEX ix_faces_top_emotion ON faces (top_emotion);

CREATE TABLE video_frames (
	id SERIAL NOT NULL,
	video_id INTEGER NOT NULL,
	time_ms INTEGER NOT NULL,
	x FLOAT NOT NULL,
	y FLOAT NOT NULL,
	w FLOAT NOT NULL,
	h FLOAT NOT NULL,
	detection_score FLOAT NOT NULL,
	p_angry FLOAT NOT NULL,
	p_disgust FLOAT NOT NULL,
	p_fear FLOAT NOT NULL,
	p_happy FLOAT NOT NULL,
	p_neutral FLOAT NOT NULL,
	p_sad FLOAT NOT NULL,
	p_surprise FLOAT NOT NULL,
	top_emotion VARCHAR(16) NOT NULL,
	faces_in_frame INTEGER NOT NULL,
	model_id VARCHAR(128) NOT NULL,
	CONSTRAINT pk_video_frames PRIMARY KEY (id),
	CONSTRAINT uq_video_frames_video_id_time_ms UNIQUE (video_id, time_ms),
	CONSTRAINT fk_video_frames_video_id_videos FOREIGN KEY(video_id) REFERENCES videos (id) ON DELETE CASCADE
);

CREATE INDEX ix_video_frames_video_id ON video_frames (video_id);
