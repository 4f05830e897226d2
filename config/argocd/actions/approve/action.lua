-- Approves the Manual cutover of the current generation: the annotation dataops.dev/approve set
-- to metadata.generation (a later spec change then needs a new approval). Plain Lua 5.1.
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["dataops.dev/approve"] = string.format("%d", obj.metadata.generation or 1)
return obj
