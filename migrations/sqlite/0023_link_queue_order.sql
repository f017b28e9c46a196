-- The linker takes the oldest queued sessions first (ORDER BY touched_ns, session_id
-- LIMIT 64): without this index each round sorted the whole queue, 30 ms a round at
-- 500,000 queued sessions (a relink of everything), about 4 minutes of sorting in all.
CREATE INDEX link_queue_touched ON link_queue (touched_ns, session_id);
