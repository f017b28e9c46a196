-- The linker takes the oldest queued sessions first (SQLite 0023): an index in that
-- order, so a round does not sort the whole queue.
CREATE INDEX link_queue_touched ON link_queue (touched_ns, session_id);
