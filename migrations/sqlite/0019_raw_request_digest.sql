-- A re-sent export request (an exporter's retry) is recognised whole by the digest of
-- its minimised content, one index entry per request; only records that carry facts
-- (tokens, cost, counters) keep a key row each (spans, log_events; metric points all
-- keep theirs), so they are counted once even when re-batched. A key row per plain span
-- was a random index insert per span, most of the write cost of ingest.
ALTER TABLE raw_records ADD COLUMN digest BLOB;
CREATE UNIQUE INDEX raw_records_digest ON raw_records (digest) WHERE digest IS NOT NULL;
