-- Raw telemetry as one compressed record per export request (store::raw) instead of one
-- wide row per span, log record and point. What stays per record is a narrow key row, so
-- a re-sent export is still stored and counted once, and retention drops whole records.

CREATE TABLE raw_records (
    id          INTEGER PRIMARY KEY,
    -- When tracelink received it (retention counts from here).
    received_ns INTEGER NOT NULL,
    -- traces, logs or metrics.
    signal      TEXT    NOT NULL,
    -- 1: deflated tracelink.raw.v1.RawRecord protobuf; 0: JSON carried over below.
    format      INTEGER NOT NULL,
    -- Spans, log records and points in the request (re-sent ones included).
    rows        INTEGER NOT NULL,
    body        BLOB    NOT NULL,
    -- Only while this migration carries the wide rows over; dropped at its end.
    part        TEXT
);
CREATE INDEX raw_records_received ON raw_records (received_ns);

-- The sessions each record holds rows of.
CREATE TABLE record_sessions (
    record_id  INTEGER NOT NULL,
    session_id INTEGER NOT NULL,
    PRIMARY KEY (record_id, session_id)
) WITHOUT ROWID;
CREATE INDEX record_sessions_session ON record_sessions (session_id, record_id);

-- Carry the wide rows over: one JSON record per (signal, time received, first key byte),
-- so no record is larger than a 256th of what arrived at one instant.
DROP INDEX spans_session;
DROP INDEX spans_received;
DROP INDEX log_events_session;
DROP INDEX log_events_received;
DROP INDEX metric_points_session;
DROP INDEX metric_points_received;
ALTER TABLE spans RENAME TO wide_spans;
ALTER TABLE log_events RENAME TO wide_log_events;
ALTER TABLE metric_points RENAME TO wide_metric_points;

INSERT INTO raw_records (received_ns, signal, format, rows, body, part)
SELECT coalesce(w.received_ns, 0), 'traces', 0, count(*),
       CAST(json_object('spans', json_group_array(json_array(
           hex(w.trace_id), hex(w.span_id), hex(w.parent_id), s.session_key, w.name, w.kind,
           w.start_ns, w.end_ns, w.status, w.attrs))) AS BLOB),
       hex(substr(w.trace_id, 1, 1))
FROM wide_spans w LEFT JOIN sessions s ON s.id = w.session_id
GROUP BY coalesce(w.received_ns, 0), substr(w.trace_id, 1, 1);

INSERT INTO raw_records (received_ns, signal, format, rows, body, part)
SELECT coalesce(w.received_ns, 0), 'logs', 0, count(*),
       CAST(json_object('logs', json_group_array(json_array(
           hex(w.digest), s.session_key, w.time_ns, w.event, hex(w.trace_id), hex(w.span_id),
           w.attrs))) AS BLOB),
       hex(substr(w.digest, 1, 1))
FROM wide_log_events w LEFT JOIN sessions s ON s.id = w.session_id
GROUP BY coalesce(w.received_ns, 0), substr(w.digest, 1, 1);

INSERT INTO raw_records (received_ns, signal, format, rows, body, part)
SELECT coalesce(w.received_ns, 0), 'metrics', 0, count(*),
       CAST(json_object('points', json_group_array(json_array(
           hex(w.series), s.session_key, w.time_ns, w.metric, w.value, w.count, w.attrs)))
           AS BLOB),
       hex(substr(w.series, 1, 1))
FROM wide_metric_points w LEFT JOIN sessions s ON s.id = w.session_id
GROUP BY coalesce(w.received_ns, 0), substr(w.series, 1, 1);

CREATE INDEX raw_records_part ON raw_records (signal, received_ns, part);

-- The key rows: which record holds each stored span, log record and point.
CREATE TABLE spans (
    record_id INTEGER NOT NULL,
    trace_id  BLOB    NOT NULL,
    span_id   BLOB    NOT NULL,
    PRIMARY KEY (record_id, trace_id, span_id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX spans_id ON spans (trace_id, span_id);

CREATE TABLE log_events (
    record_id INTEGER NOT NULL,
    digest    BLOB    NOT NULL,
    PRIMARY KEY (record_id, digest)
) WITHOUT ROWID;
CREATE UNIQUE INDEX log_events_digest ON log_events (digest);

CREATE TABLE metric_points (
    record_id INTEGER NOT NULL,
    series    BLOB    NOT NULL,
    time_ns   INTEGER NOT NULL,
    PRIMARY KEY (record_id, series, time_ns)
) WITHOUT ROWID;
CREATE UNIQUE INDEX metric_points_id ON metric_points (series, time_ns);

INSERT INTO spans (record_id, trace_id, span_id)
SELECT r.id, w.trace_id, w.span_id FROM wide_spans w
JOIN raw_records r ON r.signal = 'traces' AND r.received_ns = coalesce(w.received_ns, 0)
 AND r.part = hex(substr(w.trace_id, 1, 1));
INSERT INTO log_events (record_id, digest)
SELECT r.id, w.digest FROM wide_log_events w
JOIN raw_records r ON r.signal = 'logs' AND r.received_ns = coalesce(w.received_ns, 0)
 AND r.part = hex(substr(w.digest, 1, 1));
INSERT INTO metric_points (record_id, series, time_ns)
SELECT r.id, w.series, w.time_ns FROM wide_metric_points w
JOIN raw_records r ON r.signal = 'metrics' AND r.received_ns = coalesce(w.received_ns, 0)
 AND r.part = hex(substr(w.series, 1, 1));

INSERT INTO record_sessions (record_id, session_id)
SELECT DISTINCT r.id, w.session_id FROM wide_spans w
JOIN raw_records r ON r.signal = 'traces' AND r.received_ns = coalesce(w.received_ns, 0)
 AND r.part = hex(substr(w.trace_id, 1, 1))
WHERE w.session_id IS NOT NULL
UNION
SELECT DISTINCT r.id, w.session_id FROM wide_log_events w
JOIN raw_records r ON r.signal = 'logs' AND r.received_ns = coalesce(w.received_ns, 0)
 AND r.part = hex(substr(w.digest, 1, 1))
WHERE w.session_id IS NOT NULL
UNION
SELECT DISTINCT r.id, w.session_id FROM wide_metric_points w
JOIN raw_records r ON r.signal = 'metrics' AND r.received_ns = coalesce(w.received_ns, 0)
 AND r.part = hex(substr(w.series, 1, 1))
WHERE w.session_id IS NOT NULL;

DROP INDEX raw_records_part;
ALTER TABLE raw_records DROP COLUMN part;
DROP TABLE wide_spans;
DROP TABLE wide_log_events;
DROP TABLE wide_metric_points;
