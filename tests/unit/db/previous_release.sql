-- A database made by FlashML at git a17f706 (the last release without migrations): its schema.py's
-- create_all on SQLite, with a row in the main tables. Read by tests/unit/db/test_migrations.py.
BEGIN TRANSACTION;
CREATE TABLE aliases (
	id INTEGER NOT NULL, 
	model_id INTEGER NOT NULL, 
	name VARCHAR(64) NOT NULL, 
	versions JSON NOT NULL, 
	guard JSON, 
	shadow JSON, 
	previous JSON, 
	updated_by VARCHAR(128) NOT NULL, 
	updated_at FLOAT NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (model_id, name), 
	FOREIGN KEY(model_id) REFERENCES models (id) ON DELETE CASCADE
);
INSERT INTO "aliases" VALUES(1,1,'production','{"1": 100}',NULL,NULL,NULL,'ada',1764892800.0);
CREATE TABLE api_keys (
	id INTEGER NOT NULL, 
	key_id VARCHAR(32) NOT NULL, 
	secret_hash VARCHAR(64) NOT NULL, 
	name VARCHAR(128) NOT NULL, 
	role VARCHAR(16) NOT NULL, 
	models JSON, 
	created_by VARCHAR(64) NOT NULL, 
	created_at FLOAT NOT NULL, 
	last_used_at FLOAT, 
	revoked_at FLOAT, 
	rate_limit_per_s FLOAT, 
	burst INTEGER, 
	daily_quota INTEGER, 
	weight INTEGER DEFAULT '1' NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (key_id)
);
INSERT INTO "api_keys" VALUES(1,'k1a2b3c4d5e6f7a8','0000000000000000000000000000000000000000000000000000000000000000','ci','inference','["iris"]','ada',1764892800.0,NULL,NULL,5.0,10,1000,2);
CREATE TABLE audit (
	id INTEGER NOT NULL, 
	at FLOAT NOT NULL, 
	actor VARCHAR(128) NOT NULL, 
	action VARCHAR(64) NOT NULL, 
	target VARCHAR(255) NOT NULL, 
	detail JSON, 
	PRIMARY KEY (id)
);
INSERT INTO "audit" VALUES(1,1764892800.0,'ada','model.upload','iris','{"version": 1}');
CREATE TABLE datasets (
	id VARCHAR(32) NOT NULL, 
	name VARCHAR(255) NOT NULL, 
	format VARCHAR(8) NOT NULL, 
	size_bytes INTEGER NOT NULL, 
	rows INTEGER NOT NULL, 
	columns JSON NOT NULL, 
	object_key VARCHAR(255) NOT NULL, 
	created_by VARCHAR(128) NOT NULL, 
	created_at FLOAT NOT NULL, 
	PRIMARY KEY (id)
);
INSERT INTO "datasets" VALUES('d0','rows.csv','csv',10,3,'[{"name": "x"}]','datasets/d0/rows.csv','ada',1764892800.0);
CREATE TABLE drift_scores (
	id INTEGER NOT NULL, 
	model VARCHAR(128) NOT NULL, 
	version INTEGER NOT NULL, 
	feature VARCHAR(255) NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	score FLOAT NOT NULL, 
	statistic FLOAT, 
	p_value FLOAT, 
	at FLOAT NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE housekeeping_runs (
	task VARCHAR(32) NOT NULL, 
	last_run_at FLOAT NOT NULL, 
	duration_s FLOAT NOT NULL, 
	removed INTEGER NOT NULL, 
	error TEXT, 
	PRIMARY KEY (task)
);
INSERT INTO "housekeeping_runs" VALUES('uploads',1764892800.0,0.01,0,NULL);
CREATE TABLE job_chunks (
	job_id INTEGER NOT NULL, 
	chunk INTEGER NOT NULL, 
	rows INTEGER NOT NULL, 
	rows_bad INTEGER NOT NULL, 
	object_key VARCHAR(255) NOT NULL, 
	done_at FLOAT NOT NULL, 
	PRIMARY KEY (job_id, chunk), 
	FOREIGN KEY(job_id) REFERENCES jobs (id) ON DELETE CASCADE
);
INSERT INTO "job_chunks" VALUES(1,0,2,0,'jobs/1/chunk-0',1764892800.0);
CREATE TABLE job_log (
	id INTEGER NOT NULL, 
	job_id INTEGER NOT NULL, 
	at FLOAT NOT NULL, 
	level VARCHAR(8) NOT NULL, 
	"row" INTEGER, 
	message TEXT NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(job_id) REFERENCES jobs (id) ON DELETE CASCADE
);
CREATE TABLE job_schedules (
	id INTEGER NOT NULL, 
	spec JSON NOT NULL, 
	cron VARCHAR(128), 
	interval_s FLOAT, 
	timezone VARCHAR(64) NOT NULL, 
	created_by VARCHAR(128) NOT NULL, 
	created_at FLOAT NOT NULL, 
	last_run_at FLOAT, 
	last_job_id INTEGER, 
	PRIMARY KEY (id)
);
CREATE TABLE jobs (
	id INTEGER NOT NULL, 
	model VARCHAR(128) NOT NULL, 
	version VARCHAR(64), 
	resolved_version INTEGER, 
	dataset_id VARCHAR(32) NOT NULL, 
	output_format VARCHAR(8) NOT NULL, 
	chunk_rows INTEGER NOT NULL, 
	on_bad_row VARCHAR(8) NOT NULL, 
	mapping JSON NOT NULL, 
	schedule_id INTEGER, 
	state VARCHAR(16) NOT NULL, 
	rows_total INTEGER NOT NULL, 
	rows_done INTEGER NOT NULL, 
	rows_bad INTEGER NOT NULL, 
	error JSON, 
	result_key VARCHAR(255), 
	result_bytes INTEGER, 
	created_by VARCHAR(128) NOT NULL, 
	created_at FLOAT NOT NULL, 
	started_at FLOAT, 
	run_rows_base INTEGER NOT NULL, 
	finished_at FLOAT, 
	updated_at FLOAT NOT NULL, 
	PRIMARY KEY (id)
);
INSERT INTO "jobs" VALUES(1,'iris','1',NULL,'d0','csv',2,'skip','{"x": "x"}',NULL,'running',3,2,0,NULL,NULL,NULL,'ada',1764892800.0,NULL,0,NULL,1764892800.0);
CREATE TABLE key_usage (
	key_pk INTEGER NOT NULL, 
	day VARCHAR(10) NOT NULL, 
	count INTEGER NOT NULL, 
	PRIMARY KEY (key_pk, day)
);
INSERT INTO "key_usage" VALUES(1,'2026-12-04',42);
CREATE TABLE models (
	id INTEGER NOT NULL, 
	name VARCHAR(128) NOT NULL, 
	created_by VARCHAR(64) NOT NULL, 
	created_at FLOAT NOT NULL, 
	response_cache JSON, 
	prediction_log JSON, 
	drift JSON, 
	PRIMARY KEY (id), 
	UNIQUE (name)
);
INSERT INTO "models" VALUES(1,'iris','ada',1764892800.0,'{"enabled": true, "max_entries": 10}',NULL,NULL);
CREATE TABLE sessions (
	id VARCHAR(64) NOT NULL, 
	user_id INTEGER NOT NULL, 
	created_at FLOAT NOT NULL, 
	expires_at FLOAT NOT NULL, 
	last_seen_at FLOAT NOT NULL, 
	csrf_token VARCHAR(64) NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(user_id) REFERENCES users (id) ON DELETE CASCADE
);
CREATE TABLE setup_tokens (
	token_hash VARCHAR(64) NOT NULL, 
	created_at FLOAT NOT NULL, 
	expires_at FLOAT NOT NULL, 
	used_at FLOAT, 
	PRIMARY KEY (token_hash)
);
CREATE TABLE upload_sessions (
	id VARCHAR(32) NOT NULL, 
	token_hash VARCHAR(64) NOT NULL, 
	model VARCHAR(128) NOT NULL, 
	filename VARCHAR(255) NOT NULL, 
	size_bytes INTEGER NOT NULL, 
	sha256 VARCHAR(64), 
	user VARCHAR(64) NOT NULL, 
	actor VARCHAR(128) NOT NULL, 
	object_key VARCHAR(255) NOT NULL, 
	multipart_id VARCHAR(255), 
	part_bytes INTEGER, 
	state VARCHAR(16) NOT NULL, 
	version INTEGER, 
	error JSON, 
	created_at FLOAT NOT NULL, 
	expires_at FLOAT NOT NULL, 
	updated_at FLOAT NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE users (
	id INTEGER NOT NULL, 
	name VARCHAR(64) NOT NULL, 
	password_hash TEXT NOT NULL, 
	role VARCHAR(16) NOT NULL, 
	created_at FLOAT NOT NULL, 
	disabled INTEGER NOT NULL, 
	unlocked_at FLOAT, 
	PRIMARY KEY (id), 
	UNIQUE (name)
);
INSERT INTO "users" VALUES(1,'ada','$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaA','admin',1764892800.0,0,NULL);
CREATE TABLE versions (
	id INTEGER NOT NULL, 
	model_id INTEGER NOT NULL, 
	version INTEGER NOT NULL, 
	state VARCHAR(16) NOT NULL, 
	created_by VARCHAR(64) NOT NULL, 
	created_at FLOAT NOT NULL, 
	updated_at FLOAT NOT NULL, 
	source_name VARCHAR(255) NOT NULL, 
	size_bytes INTEGER NOT NULL, 
	sha256 VARCHAR(64), 
	signature JSON, 
	manifest JSON, 
	report JSON, 
	errors JSON, 
	config JSON, 
	perf JSON, 
	pinned BOOLEAN DEFAULT '0' NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (model_id, version), 
	FOREIGN KEY(model_id) REFERENCES models (id) ON DELETE CASCADE
);
INSERT INTO "versions" VALUES(1,1,1,'ready','ada',1764892800.0,1764892800.0,'iris.onnx',1234,'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',NULL,NULL,NULL,NULL,NULL,NULL,1);
CREATE INDEX drift_scores_series ON drift_scores (model, version, at);
COMMIT;
