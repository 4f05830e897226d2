-- Argo CD custom health check for dataops.dev/DataMigration.
-- Argo CD passes the resource as the global `obj` and expects a table with
-- `status` (Healthy, Progressing, Degraded, Suspended) and `message`.
-- Plain Lua 5.1 (gopher-lua): nothing from Lua 5.2 or later.
local hs = {}

local function nonEmpty(value)
  return type(value) == "string" and value ~= ""
end

local metadata = obj.metadata or {}
local spec = obj.spec or {}
local status = obj.status
local generation = metadata.generation

if status == nil or status.observedGeneration == nil or status.observedGeneration ~= generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

-- The kstatus conditions decide first (Stalled, then Ready), so a terminal state shows as such even
-- when the spec is also suspended; the phase stays the fallback for a status written before them.
local function condition(kind)
  if type(status.conditions) ~= "table" then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if type(c) == "table" and c.type == kind then
      return c
    end
  end
  return nil
end

local phase = status.phase
local detail = nil
if nonEmpty(status.message) then
  detail = status.message
end

local message
if nonEmpty(phase) then
  if detail ~= nil then
    message = phase .. ": " .. detail
  else
    message = phase
  end
elseif detail ~= nil then
  message = detail
else
  message = "Waiting for the operator to report a phase"
end

local stalled = condition("Stalled")
local ready = condition("Ready")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  if detail == nil and nonEmpty(stalled.message) then
    message = message .. ": " .. stalled.message
  end
elseif ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
elseif phase == "Succeeded" then
  hs.status = "Healthy"
elseif phase == "Failed" or phase == "RolledBack" then
  hs.status = "Degraded"
elseif spec.suspend == true then
  hs.status = "Suspended"
  message = "Suspended"
elseif phase == "AwaitingApproval" then
  hs.status = "Suspended"
  message = message .. " (approve by setting the annotation dataops.dev/approve)"
else
  -- Pending, SchemaMigrating, Copying, Syncing, Validating, CuttingOver,
  -- RollingBack, an unknown phase, or none yet.
  hs.status = "Progressing"
end

hs.message = message
return hs
