-- agentcron schema 1: job definitions and state, runs (with leases), fire claims,
-- system state, node heartbeats and the job audit log.
-- Times are integer microseconds since the Unix epoch, UTC (`*_us`), so ordering and range
-- queries are plain integer comparisons. JSON columns hold `json.dumps` text.

-- 'acr1' marks the file as an agentcron database (checked before anything is written).
PRAGMA application_id = 1633907249;

CREATE TABLE jobs (
    id           TEXT PRIMARY KEY NOT NULL,
    definition   TEXT NOT NULL,
    paused       INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
    pause_note   TEXT,
    next_run_us  INTEGER,
    last_fire_us INTEGER,
    created_us   INTEGER NOT NULL,
    updated_us   INTEGER NOT NULL,
    version      INTEGER NOT NULL DEFAULT 1
);

-- No foreign key to jobs: a run may be recorded for a job defined only in code, and
-- delete_job removes a job's runs itself.
CREATE TABLE runs (
    run_id           TEXT PRIMARY KEY NOT NULL,
    job_id           TEXT NOT NULL,
    scheduled_for_us INTEGER NOT NULL,
    status           TEXT NOT NULL,
    attempt          INTEGER NOT NULL DEFAULT 1,
    started_us       INTEGER,
    finished_us      INTEGER,
    error            TEXT,
    output_tail      TEXT,
    node_id          TEXT,
    skip_reason      TEXT,
    lease_expires_us INTEGER,
    fence            INTEGER NOT NULL DEFAULT 0,
    queue_job_id     TEXT
);
CREATE INDEX runs_by_job ON runs (job_id, scheduled_for_us DESC, run_id DESC);
CREATE INDEX runs_by_time ON runs (scheduled_for_us DESC, run_id DESC);
-- Lease expiry looks only at `running` runs: a partial index stays tiny and costs a write
-- only while a run is running. Status filters use runs_by_job / runs_by_time (newest first),
-- which keeps the write path (two index-heavy writes per run) lighter.
CREATE INDEX runs_by_lease ON runs (lease_expires_us) WHERE status = 'running';

CREATE TABLE fire_claims (
    job_id           TEXT NOT NULL,
    scheduled_for_us INTEGER NOT NULL,
    node_id          TEXT NOT NULL,
    claimed_us       INTEGER NOT NULL,
    UNIQUE (job_id, scheduled_for_us)
);

CREATE TABLE system_state (
    key        TEXT PRIMARY KEY NOT NULL,
    value      TEXT NOT NULL,
    updated_us INTEGER NOT NULL
);

CREATE TABLE node_heartbeats (
    node_id    TEXT PRIMARY KEY NOT NULL,
    sequence   INTEGER NOT NULL,
    sent_us    INTEGER NOT NULL,
    status     TEXT NOT NULL,
    host       TEXT NOT NULL,
    pid        INTEGER NOT NULL,
    version    TEXT NOT NULL,
    platform   TEXT NOT NULL,
    started_us INTEGER,
    interval_s REAL NOT NULL,
    details    TEXT NOT NULL
);

CREATE TABLE job_audit (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    action TEXT NOT NULL,
    actor  TEXT NOT NULL,
    at_us  INTEGER NOT NULL,
    before TEXT,
    after  TEXT
);
CREATE INDEX job_audit_by_job ON job_audit (job_id, id DESC);

PRAGMA user_version = 1;
