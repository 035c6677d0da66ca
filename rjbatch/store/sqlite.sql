-- The SQLite store's statements, one named block each; rjbatch/store/sqlite.py runs them
-- by name. {filter} is replaced by a WHERE fragment built from a store filter.

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
UPDATE jobs SET state = 'running', worker_name = ?
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
