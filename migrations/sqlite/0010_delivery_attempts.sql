-- Attempts to apply a delivery: one that keeps failing is set aside (status 'failed')
-- after a few, instead of holding back every delivery after it.
ALTER TABLE deliveries ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
-- When a delivery that failed to apply is tried next (ns; 0: now).
ALTER TABLE deliveries ADD COLUMN retry_ns INTEGER NOT NULL DEFAULT 0;
