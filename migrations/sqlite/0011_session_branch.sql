-- The branch a session worked on (`vcs.ref.head.name` where `vcs.ref.head.type` is a
-- branch or absent: Claude Code's tool results, gen_ai `invoke_agent` spans, resource
-- attributes). Shown with the session; the first one seen stays.
ALTER TABLE sessions ADD COLUMN branch TEXT;
