-- Aborts a running migration (phase Failed, reason Aborted): the annotation dataops.dev/abort set
-- to metadata.generation. A switched Service is restored; the target is left as it is. Plain Lua 5.1.
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["dataops.dev/abort"] = string.format("%d", obj.metadata.generation or 1)
return obj
