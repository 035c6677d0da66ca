-- The statements SQLite and PostgreSQL run alike, one named block each;
-- rjbatch/store/sqlbase.py (SQLStore) runs them by name. Parameters are written "?",
-- the PostgreSQL store reads them as "%s". {filter} is replaced by a WHERE fragment
-- built from a store filter, {order} by an ORDER BY clause, {assignments} by a SET
-- list, {columns} and {marks} by a column list and its placeholders, and {table} by
-- input_slices or output_slices: all of them fixed names or placeholders, never values.
-- A backend's own .sql file may define a block of the same name, which then wins.

-- name: insert_job
INSERT INTO jobs ({columns}) VALUES ({marks});

-- name: update_job
UPDATE jobs SET {assignments} WHERE id = ? AND {filter};

-- name: update_jobs
UPDATE jobs SET {assignments} WHERE {filter};

-- name: find_job
SELECT * FROM jobs WHERE id = ?;

-- name: find_jobs
SELECT * FROM jobs WHERE {filter}{order};

-- name: find_jobs_page
SELECT * FROM jobs WHERE {filter}{order} LIMIT ? OFFSET ?;

-- name: count_jobs
SELECT count(*) AS n FROM jobs WHERE {filter};

-- name: count_jobs_by
-- {field}: a column name, or the backend's document path expression (its path a parameter)
SELECT {field} AS value, count(*) AS n FROM jobs WHERE {filter} GROUP BY 1;

-- name: delete_job
DELETE FROM jobs WHERE id = ?;

-- name: delete_jobs
DELETE FROM jobs WHERE {filter};

-- name: next_run_at
-- lets an idle worker sleep until the next scheduled job falls due
SELECT min(run_at) AS run_at FROM jobs WHERE state = 'queued' AND run_at > ?;

-- name: update_input_slice
UPDATE input_slices SET {assignments} WHERE job_id = ? AND category = ? AND id = ?;

-- name: delete_slices
DELETE FROM {table} WHERE job_id = ? AND id >= ?;

-- name: delete_category_slices
DELETE FROM {table} WHERE job_id = ? AND id >= ? AND category = ?;

-- name: retry_failed_slices
UPDATE input_slices SET state = 'queued', worker_name = NULL, started_at = NULL
WHERE job_id = ? AND category = ? AND state = 'failed';

-- name: count_slices
SELECT state, count(*) AS slices, coalesce(sum(record_count), 0) AS records FROM input_slices
WHERE job_id = ? AND category = ? GROUP BY state;

-- name: count_output_slices
SELECT count(*) AS slices, coalesce(sum(record_count), 0) AS records FROM output_slices
WHERE job_id = ? AND category = ?;

-- name: read_input_slices
SELECT * FROM input_slices WHERE job_id = ? AND category = ? AND id > ? ORDER BY id LIMIT ?;

-- name: read_input_slices_in_state
SELECT * FROM input_slices WHERE job_id = ? AND category = ? AND id > ? AND state = ?
ORDER BY id LIMIT ?;

-- name: read_output_slices
SELECT * FROM output_slices WHERE job_id = ? AND category = ? AND id > ? ORDER BY id LIMIT ?;

-- name: output_slices_for
SELECT * FROM output_slices WHERE job_id = ? AND id = ?;

-- name: find_dirmon_entries
SELECT * FROM dirmon_entries WHERE {filter} ORDER BY name;

-- name: delete_dirmon_entry
DELETE FROM dirmon_entries WHERE id = ?;

-- name: find_server
SELECT * FROM servers WHERE name = ?;

-- name: find_servers
SELECT * FROM servers ORDER BY name;

-- name: update_server
UPDATE servers SET {assignments} WHERE name = ? AND {filter};

-- name: delete_server
DELETE FROM servers WHERE name = ?;
