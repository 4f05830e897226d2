-- Resumes the migration: spec.suspend false; it continues where it stopped. Plain Lua 5.1.
obj.spec.suspend = false
return obj
