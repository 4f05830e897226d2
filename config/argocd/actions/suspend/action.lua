-- Pauses the migration: spec.suspend true (no new step starts; a running step finishes).
-- With Argo CD self-heal on, put suspend: true in Git instead, or self-heal reverts it. Plain Lua 5.1.
obj.spec.suspend = true
return obj
