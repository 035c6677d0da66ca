-- The SQLite store's statements, one named block each; rjbatch/store/sqlite.py runs them
-- by name, beside the shared ones of sqlbase.sql. {filter} is replaced by a WHERE
-- fragment built from a store filter, {ids} by one "?" per id, {increments} by json_set's
-- path and value pairs; PRAGMAs take no parameters, so {mode} and {version} are filled
-- from the store's own checked constants.

-- name: begin_write
-- takes the write lock up front, so a read-then-write never deadlocks on its upgrade
BEGIN IMMEDIATE;

-- name: commit
COMMIT;

-- name: rollback
ROLLBACK;

-- name: use_wal
PRAGMA journal_mode = WAL;

-- name: set_synchronous
PRAGMA synchronous = {mode};

-- name: schema_version
PRAGMA user_version;

-- name: set_schema_version
PRAGMA user_version = {version};

-- name: data_version
-- changes whenever another connection commits: what idle workers poll
PRAGMA data_version;

-- name: vacuum
VACUUM;

-- name: truncate_wal
PRAGMA wal_checkpoint(TRUNCATE);

-- name: schema_1
CREATE TABLE IF NOT EXISTS jobs (
    id           TEXT PRIMARY KEY,       -- 24 hex digits, time ordered (an ObjectId)
    type         TEXT NOT NULL,          -- import path of the job class
    classes      TEXT NOT NULL,          -- '|Job|BatchJob|ReverseJob|': queries on a parent class
    state        TEXT NOT NULL,
    sub_state    TEXT,
    priority     INTEGER NOT NULL,
    run_at       TEXT,                   -- ISO 8601 UTC with milliseconds: sorts as text
    expires_at   TEXT,
    created_at   TEXT NOT NULL,
    started_at   TEXT,
    completed_at TEXT,
    worker_name  TEXT,
    doc          TEXT NOT NULL DEFAULT '{}'  -- every other field, as JSON
);
-- serves the claim exactly: equality on state, then priority order, then id order
CREATE INDEX IF NOT EXISTS jobs_claim ON jobs (state, priority, id);
CREATE INDEX IF NOT EXISTS jobs_completed_at ON jobs (completed_at);
CREATE TABLE IF NOT EXISTS servers (
    name         TEXT PRIMARY KEY,
    state        TEXT NOT NULL,
    max_workers  INTEGER NOT NULL,
    started_at   TEXT,
    heartbeat_at TEXT,
    doc          TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    target     TEXT,                     -- a server name, or NULL for every server
    action     TEXT NOT NULL,
    params     TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL
);

-- name: claim_job
-- Two index range scans (queued by priority, and batch jobs being processed), each
-- stopping at its first row, then the better of the two: never a sort of the queue.
UPDATE jobs SET state = 'running', worker_name = ?,
    started_at = CASE WHEN state = 'queued' THEN ? ELSE started_at END
WHERE id = (
    SELECT id FROM (
        SELECT * FROM (
            SELECT id, priority FROM jobs
            WHERE state = 'queued' AND (run_at IS NULL OR run_at <= ?) AND {filter}
            ORDER BY priority, id LIMIT 1)
        UNION ALL
        SELECT * FROM (
            SELECT id, priority FROM jobs
            WHERE state = 'running' AND sub_state = 'processing'
              AND (run_at IS NULL OR run_at <= ?) AND {filter}
            ORDER BY priority, id LIMIT 1)
    )
    ORDER BY priority, id LIMIT 1
)
RETURNING *;

-- name: schema_2
-- Slices of batch jobs. An output slice keeps its input slice's id, so reading output
-- in id order gives upload order, and re-processing a slice replaces its output.
CREATE TABLE IF NOT EXISTS input_slices (
    job_id                   TEXT NOT NULL,
    category                 TEXT NOT NULL,
    id                       INTEGER NOT NULL,   -- upload order, from 1
    state                    TEXT NOT NULL DEFAULT 'queued',  -- queued, running, failed
    first_record_number      INTEGER NOT NULL,
    record_count             INTEGER NOT NULL,
    worker_name              TEXT,
    started_at               TEXT,
    failure_count            INTEGER NOT NULL DEFAULT 0,
    processing_record_number INTEGER,            -- 1-based, kept when the slice fails
    exception                TEXT,               -- JSON
    serializer               TEXT NOT NULL,
    data                     BLOB NOT NULL,
    PRIMARY KEY (job_id, category, id)
);
-- serves the slice claim exactly
CREATE INDEX IF NOT EXISTS input_slices_claim ON input_slices (job_id, category, state, id);
CREATE INDEX IF NOT EXISTS input_slices_worker ON input_slices (state, worker_name);
CREATE TABLE IF NOT EXISTS output_slices (
    job_id              TEXT NOT NULL,
    category            TEXT NOT NULL,
    id                  INTEGER NOT NULL,
    first_record_number INTEGER NOT NULL,
    record_count        INTEGER NOT NULL,
    serializer          TEXT NOT NULL,
    data                BLOB NOT NULL,
    PRIMARY KEY (job_id, category, id)
);

-- name: claim_slices
UPDATE input_slices SET state = 'running', worker_name = ?, started_at = ?
WHERE job_id = ? AND category = ? AND id IN (
    SELECT id FROM input_slices
    WHERE job_id = ? AND category = ? AND state = 'queued'
    ORDER BY id LIMIT ?)
RETURNING id, first_record_number, record_count, failure_count, processing_record_number,
          exception, serializer, data, state, worker_name, started_at;

-- name: insert_input_slice
INSERT INTO input_slices (job_id, category, id, first_record_number, record_count, serializer, data, state)
VALUES (?, ?, ?, ?, ?, ?, ?, ?);

-- name: upsert_output_slice
INSERT OR REPLACE INTO output_slices (job_id, category, id, first_record_number, record_count, serializer, data)
VALUES (?, ?, ?, ?, ?, ?, ?);

-- name: delete_input_slice
DELETE FROM input_slices WHERE job_id = ? AND category = ? AND id = ?;

-- name: fail_input_slice
-- with a worker name (given twice), only while that worker holds the slice
UPDATE input_slices
SET state = 'failed', worker_name = NULL, failure_count = failure_count + 1,
    processing_record_number = ?, exception = ?
WHERE job_id = ? AND category = ? AND id = ?
  AND (? IS NULL OR (state = 'running' AND worker_name = ?));

-- name: delete_held_input_slices
-- completing slices under a fence: only those the worker still holds leave
DELETE FROM input_slices WHERE job_id = ? AND category = ? AND id IN ({ids})
  AND state = 'running' AND worker_name = ? RETURNING id;

-- name: next_slice_id
SELECT max(m) FROM (
    SELECT max(id) AS m FROM input_slices WHERE job_id = ? AND category = ?
    UNION ALL SELECT max(id) FROM output_slices WHERE job_id = ? AND category = ?);

-- name: release_slices
UPDATE input_slices SET state = 'queued', worker_name = NULL, started_at = NULL
WHERE job_id = ? AND category = ? AND id IN ({ids});

-- name: requeue_running_slices
-- a dead server's (or worker's) slices, whatever job they belong to: the name itself,
-- or names that continue it with ":" ("host:12" matches "host:12:3", not "host:123")
UPDATE input_slices SET state = 'queued', worker_name = NULL, started_at = NULL
WHERE state = 'running' AND (worker_name = ? OR substr(worker_name, 1, ?) = ?);

-- name: requeue_job_slices
UPDATE input_slices SET state = 'queued', worker_name = NULL, started_at = NULL
WHERE job_id = ? AND category = ? AND state = 'running'
  AND (worker_name = ? OR substr(worker_name, 1, ?) = ?);

-- name: delete_finished_jobs
-- a worker's finished jobs (still running in the store), taken out before its next claim
DELETE FROM jobs WHERE id IN ({ids}) AND state = 'running' AND worker_name = ?;

-- name: increment_job
UPDATE jobs SET doc = json_set(doc, {increments}) WHERE id = ?;

-- name: increment_job_any_keys
-- keys SQLite's JSON paths cannot name: rjbatch_increment (Python) adds [[keys, amount], ...]
UPDATE jobs SET doc = rjbatch_increment(doc, ?) WHERE id = ?;

-- name: save_dirmon_entry
INSERT INTO dirmon_entries (id, name, pattern, state, doc) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET name = excluded.name, pattern = excluded.pattern,
    state = excluded.state, doc = excluded.doc;

-- name: save_server
INSERT OR REPLACE INTO servers (name, state, max_workers, started_at, heartbeat_at, doc)
VALUES (?, ?, ?, ?, ?, ?);

-- name: schema_3
-- Directory-monitor rules: which files to pick up and which job to give them to.
CREATE TABLE IF NOT EXISTS dirmon_entries (
    id      TEXT PRIMARY KEY,
    name    TEXT NOT NULL,
    pattern TEXT NOT NULL UNIQUE,
    state   TEXT NOT NULL,
    doc     TEXT NOT NULL DEFAULT '{}'
);

-- name: schema_4
-- lets an idle worker find when the next scheduled job falls due
CREATE INDEX IF NOT EXISTS jobs_scheduled ON jobs (state, run_at);

-- name: schema_5
-- Singleton jobs: at most one queued, running or paused job per singleton key (the class),
-- enforced by the index itself, so two processes creating one at once cannot both win.
ALTER TABLE jobs ADD COLUMN singleton TEXT;
CREATE UNIQUE INDEX IF NOT EXISTS jobs_singleton ON jobs (singleton)
WHERE singleton IS NOT NULL AND state IN ('queued', 'running', 'paused');
