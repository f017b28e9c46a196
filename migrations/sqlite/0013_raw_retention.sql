-- Raw telemetry is kept for --retain-raw after tracelink received it (agents' own
-- timestamps can be 0 or wrong), so each raw row records when it arrived, indexed for
-- the pruner's small batches. Rows from before count as received now: they are kept a
-- full window.
ALTER TABLE spans ADD COLUMN received_ns INTEGER;
ALTER TABLE log_events ADD COLUMN received_ns INTEGER;
ALTER TABLE metric_points ADD COLUMN received_ns INTEGER;
UPDATE spans SET received_ns = CAST(strftime('%s', 'now') AS INTEGER) * 1000000000;
UPDATE log_events SET received_ns = CAST(strftime('%s', 'now') AS INTEGER) * 1000000000;
UPDATE metric_points SET received_ns = CAST(strftime('%s', 'now') AS INTEGER) * 1000000000;
CREATE INDEX spans_received ON spans (received_ns);
CREATE INDEX log_events_received ON log_events (received_ns);
CREATE INDEX metric_points_received ON metric_points (received_ns);
-- Processed deliveries whose payload is still kept (for replay), oldest first.
CREATE INDEX deliveries_payload_kept ON deliveries (received_ns)
    WHERE payload IS NOT NULL AND status = 'processed';
