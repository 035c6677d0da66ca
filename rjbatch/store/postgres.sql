-- The PostgreSQL store's statements, one named block each; rjbatch/store/postgres.py runs
-- them by name, beside the shared ones of sqlbase.sql. Parameters are psycopg's %s;
-- {filter} is replaced by a WHERE fragment built from a store filter, {increments} by
-- nested rjbatch_increment calls, {table} by one of the store's fixed table names; the
-- {schema}, {source}, {target}, {function} and {arguments} of the schema moves are
-- psycopg sql.Identifier compositions. schema_N blocks are the versioned migrations,
-- applied in order under an advisory lock and recorded in rjbatch_schema.

-- name: use_utc
-- timestamptz values come back in UTC
SET TIME ZONE 'UTC';

-- name: listen
-- idle workers wait for the notifications the rjbatch_notify triggers send
LISTEN rjbatch;

-- name: set_search_path
SELECT set_config('search_path', %s, false);

-- name: round_trip
-- a notification committed before this is delivered ahead of its reply
SELECT 1;

-- name: vacuum
VACUUM (ANALYZE) {table};

-- name: has_version_table
SELECT to_regclass('rjbatch_schema') IS NOT NULL AS present;

-- name: schema_version
SELECT coalesce(max(version), 0) AS version FROM rjbatch_schema;

-- name: schema_of_table
-- where a table name resolves on the connection's search_path
SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = to_regclass(%s);

-- name: lock_migrations
-- one process migrates; the others wait for the end of its transaction
SELECT pg_advisory_xact_lock(%s);

-- name: create_version_table
CREATE TABLE IF NOT EXISTS rjbatch_schema (
    version    integer PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- name: record_version
INSERT INTO rjbatch_schema (version) VALUES (%s);

-- name: schema_exists
SELECT 1 FROM pg_namespace WHERE nspname = %s;

-- name: create_schema
CREATE SCHEMA {schema};

-- name: tables_in_schema
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relname = ANY(%s) AND c.relkind IN ('r', 'p', 'v', 'm', 'f');

-- name: jobs_columns_in_schema
SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relname = 'jobs' AND a.attnum > 0 AND NOT a.attisdropped;

-- name: move_table
ALTER TABLE {source}.{table} SET SCHEMA {target};

-- name: function_exists
SELECT to_regprocedure(%s) IS NOT NULL AS present;

-- name: move_function
ALTER FUNCTION {source}.{function}({arguments}) SET SCHEMA {target};

-- name: schema_1
CREATE TABLE jobs (
    id           text COLLATE "C" PRIMARY KEY,  -- 24 hex digits, time ordered (an ObjectId)
    type         text NOT NULL,                 -- import path of the job class
    classes      text[] NOT NULL,               -- {Job,BatchJob,ReverseJob}: queries on a parent class
    state        text NOT NULL,
    sub_state    text,
    priority     integer NOT NULL,
    run_at       timestamptz,
    expires_at   timestamptz,
    created_at   timestamptz NOT NULL,
    started_at   timestamptz,
    completed_at timestamptz,
    worker_name  text,
    doc          jsonb NOT NULL DEFAULT '{}'    -- every other field
);
-- serves the claim exactly: equality on state, then priority order, then id order
CREATE INDEX jobs_claim ON jobs (state, priority, id);
-- the batch jobs workers may join, however many jobs are running
CREATE INDEX jobs_processing ON jobs (priority, id) WHERE state = 'running' AND sub_state = 'processing';
CREATE INDEX jobs_completed_at ON jobs (completed_at);
-- lets an idle worker find when the next scheduled job falls due
CREATE INDEX jobs_scheduled ON jobs (state, run_at);

-- Slices of batch jobs. An output slice keeps its input slice's id, so reading output
-- in id order gives upload order, and re-processing a slice replaces its output. Input
-- slices are deleted as they complete, so their table stays small.
CREATE TABLE input_slices (
    job_id                   text COLLATE "C" NOT NULL,
    category                 text NOT NULL,
    id                       integer NOT NULL,   -- upload order, from 1
    state                    text NOT NULL DEFAULT 'queued',  -- queued, running, failed
    first_record_number      bigint NOT NULL,
    record_count             integer NOT NULL,
    worker_name              text,
    started_at               timestamptz,
    failure_count            integer NOT NULL DEFAULT 0,
    processing_record_number integer,            -- 1-based, kept when the slice fails
    exception                jsonb,
    serializer               text NOT NULL,
    data                     bytea NOT NULL,
    PRIMARY KEY (job_id, category, id)
);
-- serves the slice claim exactly, and holds only what can be claimed
CREATE INDEX input_slices_queued ON input_slices (job_id, category, id) WHERE state = 'queued';
-- a dead worker's slices, whatever job they belong to
CREATE INDEX input_slices_running ON input_slices (worker_name) WHERE state = 'running';
CREATE TABLE output_slices (
    job_id              text COLLATE "C" NOT NULL,
    category            text NOT NULL,
    id                  integer NOT NULL,
    first_record_number bigint NOT NULL,
    record_count        integer NOT NULL,
    serializer          text NOT NULL,
    data                bytea NOT NULL,
    PRIMARY KEY (job_id, category, id)
);
-- slice data is compressed already: store it out of line without compressing it again
ALTER TABLE input_slices ALTER COLUMN data SET STORAGE EXTERNAL;
ALTER TABLE output_slices ALTER COLUMN data SET STORAGE EXTERNAL;

CREATE TABLE servers (
    name         text PRIMARY KEY,
    state        text NOT NULL,
    max_workers  integer NOT NULL,
    started_at   timestamptz,
    heartbeat_at timestamptz,
    doc          jsonb NOT NULL DEFAULT '{}'
);

-- Directory-monitor rules: which files to pick up and which job to give them to.
CREATE TABLE dirmon_entries (
    id      text PRIMARY KEY,
    name    text NOT NULL,
    pattern text NOT NULL UNIQUE,
    state   text NOT NULL,
    doc     jsonb NOT NULL DEFAULT '{}'
);

-- Adds to a number at a path of a document, creating missing parent objects (what
-- SQLite's json_set does); a non-object in the way leaves the document unchanged.
CREATE FUNCTION rjbatch_increment(doc jsonb, path text[], amount numeric) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    node jsonb;
BEGIN
    FOR depth IN 1 .. coalesce(array_length(path, 1), 0) - 1 LOOP
        node := doc #> path[1:depth];
        IF node IS NULL OR node = 'null'::jsonb THEN
            doc := jsonb_set(doc, path[1:depth], '{}'::jsonb);
        ELSIF jsonb_typeof(node) <> 'object' THEN
            RETURN doc;
        END IF;
    END LOOP;
    node := doc #> path;
    RETURN jsonb_set(doc, path, to_jsonb(
        CASE WHEN jsonb_typeof(node) = 'number' THEN node::numeric ELSE 0 END + amount));
END $$;

-- Wake-ups: idle workers LISTEN on "rjbatch"; these triggers NOTIFY when work may have
-- appeared: a job queued or being processed was written, input slices were inserted,
-- or slices went back to the queue. PostgreSQL folds identical notifications of one
-- transaction into one.
CREATE FUNCTION rjbatch_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('rjbatch', TG_TABLE_NAME);
    RETURN NULL;
END $$;
CREATE TRIGGER jobs_notify AFTER INSERT OR UPDATE ON jobs FOR EACH ROW
    WHEN (NEW.state = 'queued' OR NEW.sub_state = 'processing')
    EXECUTE FUNCTION rjbatch_notify();
CREATE TRIGGER input_slices_inserted AFTER INSERT ON input_slices FOR EACH STATEMENT
    EXECUTE FUNCTION rjbatch_notify();
CREATE TRIGGER input_slices_queued AFTER UPDATE ON input_slices FOR EACH ROW
    WHEN (NEW.state = 'queued')
    EXECUTE FUNCTION rjbatch_notify();

-- name: schema_2
-- Singleton jobs: at most one queued, running or paused job per singleton key (the class),
-- enforced by the index itself, so two processes creating one at once cannot both win.
ALTER TABLE jobs ADD COLUMN singleton text;
CREATE UNIQUE INDEX jobs_singleton ON jobs (singleton)
WHERE singleton IS NOT NULL AND state IN ('queued', 'running', 'paused');

-- name: claim_job
-- One statement. First the worker's finished jobs (still running in the store) leave.
-- Then three index walks that each stop at their first row: the best batch job being
-- processed (joined by any number of workers, so never locked), the best queued job
-- (a peek, unlocked), and, only when no batch job comes before that one, the best
-- queued job that no other claim holds, locked with SKIP LOCKED. The UPDATE takes the
-- locked queued job if there is one, else joins the batch job. No condition here is
-- one the planner must estimate to choose the index walk over a sort, so the plan
-- holds before the table has statistics.
WITH finished AS (
    DELETE FROM jobs WHERE id = ANY(%s::text[]) AND state = 'running' AND worker_name = %s
), batch AS (
    SELECT id, priority FROM jobs
    WHERE state = 'running' AND sub_state = 'processing'
      AND (run_at IS NULL OR run_at <= %s) AND {filter} AND id <> ALL(%s::text[])
    ORDER BY priority, id LIMIT 1
), first_queued AS (
    SELECT id, priority FROM jobs
    WHERE state = 'queued' AND (run_at IS NULL OR run_at <= %s) AND {filter}
    ORDER BY priority, id LIMIT 1
), queued AS (
    SELECT id FROM jobs
    WHERE state = 'queued' AND (run_at IS NULL OR run_at <= %s) AND {filter}
      AND NOT EXISTS (SELECT 1 FROM batch, first_queued
                      WHERE (batch.priority, batch.id) < (first_queued.priority, first_queued.id))
    ORDER BY priority, id LIMIT 1
    FOR UPDATE SKIP LOCKED
)
UPDATE jobs SET state = 'running', worker_name = %s,
    started_at = CASE WHEN jobs.state = 'queued' THEN %s ELSE jobs.started_at END
WHERE jobs.id = coalesce((SELECT id FROM queued), (SELECT id FROM batch))
  AND (jobs.state = 'queued' OR (jobs.state = 'running' AND jobs.sub_state = 'processing'))
RETURNING jobs.*, EXISTS (SELECT 1 FROM queued) AS claimed_from_queue;

-- name: increment_job
UPDATE jobs SET doc = {increments} WHERE id = %s;

-- name: claim_slices
-- by ctid: the rows the subquery locked, found without a plan to choose
UPDATE input_slices SET state = 'running', worker_name = %s, started_at = %s
WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM input_slices
    WHERE job_id = %s AND category = %s AND state = 'queued'
    ORDER BY id LIMIT %s
    FOR UPDATE SKIP LOCKED))
RETURNING id, first_record_number, record_count, failure_count, processing_record_number,
          exception, serializer, data, state, worker_name, started_at;

-- name: copy_input_slices
COPY input_slices (job_id, category, id, first_record_number, record_count, serializer, data, state)
FROM STDIN (FORMAT BINARY);

-- name: next_slice_id
SELECT greatest(
    (SELECT max(id) FROM input_slices WHERE job_id = %s AND category = %s),
    (SELECT max(id) FROM output_slices WHERE job_id = %s AND category = %s));

-- name: release_slices
-- (job_id, category, id) IN (... unnest ...): primary-key lookups whatever the statistics
-- say, where "id = ANY(array)" may be planned as a walk over all of the job's slices
UPDATE input_slices SET state = 'queued', worker_name = NULL, started_at = NULL
WHERE (job_id, category, id) IN (SELECT %s, %s, unnest(%s::integer[]));

-- name: upsert_output_slice
INSERT INTO output_slices (job_id, category, id, first_record_number, record_count, serializer, data)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (job_id, category, id) DO UPDATE SET
    first_record_number = excluded.first_record_number, record_count = excluded.record_count,
    serializer = excluded.serializer, data = excluded.data;

-- name: complete_slices
-- One statement, so one transaction and one round trip: the input slices leave and their
-- outputs are written, replacing those of an earlier completion of the same slice. With a
-- worker name, only the slices that worker still holds (a requeued slice's stale worker
-- writes nothing); the ids completed come back.
WITH completed AS (
    DELETE FROM input_slices WHERE job_id = %s AND category = %s AND id = ANY(%s::integer[])
      AND (%s::text IS NULL OR (state = 'running' AND worker_name = %s::text))
    RETURNING id
), written AS (
    INSERT INTO output_slices (job_id, category, id, first_record_number, record_count, serializer, data)
    SELECT %s, o.* FROM unnest(%s::text[], %s::integer[], %s::bigint[], %s::integer[], %s::text[], %s::bytea[])
        AS o(category, id, first_record_number, record_count, serializer, data)
    WHERE %s::text IS NULL OR o.id IN (SELECT id FROM completed)
    ON CONFLICT (job_id, category, id) DO UPDATE SET
        first_record_number = excluded.first_record_number, record_count = excluded.record_count,
        serializer = excluded.serializer, data = excluded.data
)
SELECT id FROM completed;

-- name: fail_input_slice
UPDATE input_slices
SET state = 'failed', worker_name = NULL, failure_count = failure_count + 1,
    processing_record_number = %s, exception = %s::jsonb
WHERE job_id = %s AND category = %s AND id = %s
  AND (%s::text IS NULL OR (state = 'running' AND worker_name = %s::text));

-- name: requeue_running_slices
-- a dead server's (or worker's) slices, whatever job they belong to: the name itself,
-- or names that continue it with ":" ("host:12" matches "host:12:3", not "host:123")
UPDATE input_slices SET state = 'queued', worker_name = NULL, started_at = NULL
WHERE state = 'running' AND (worker_name = %s OR starts_with(worker_name, %s));

-- name: requeue_job_slices
UPDATE input_slices SET state = 'queued', worker_name = NULL, started_at = NULL
WHERE job_id = %s AND category = %s AND state = 'running'
  AND (worker_name = %s OR starts_with(worker_name, %s));

-- name: save_dirmon_entry
INSERT INTO dirmon_entries (id, name, pattern, state, doc) VALUES (%s, %s, %s, %s, %s::jsonb)
ON CONFLICT (id) DO UPDATE SET name = excluded.name, pattern = excluded.pattern,
    state = excluded.state, doc = excluded.doc;

-- name: save_server
INSERT INTO servers (name, state, max_workers, started_at, heartbeat_at, doc)
VALUES (%s, %s, %s, %s, %s, %s::jsonb)
ON CONFLICT (name) DO UPDATE SET state = excluded.state, max_workers = excluded.max_workers,
    started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, doc = excluded.doc;
