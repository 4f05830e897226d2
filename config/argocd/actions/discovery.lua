-- Argo CD resource actions for dataops.dev/DataMigration: which ones the UI offers, and which
-- are enabled for this object's state. Mirrors what the operator accepts (src/controller/decide.ts):
-- approve a Manual cutover, abort a running migration, retry a step that failed or was aborted,
-- suspend and resume through spec.suspend. Plain Lua 5.1 (gopher-lua).
local actions = {}
local spec = obj.spec or {}
local status = obj.status or {}
local phase = status.phase or "Pending"
local terminal = phase == "Succeeded" or phase == "Failed" or phase == "RolledBack"
local suspended = spec.suspend == true

local readyReason = nil
if status.conditions ~= nil then
  for _, condition in ipairs(status.conditions) do
    if condition.type == "Ready" then
      readyReason = condition.reason
    end
  end
end
local retryable = phase == "Failed"
  and (readyReason == "JobFailed" or readyReason == "RollbackFailed" or readyReason == "Aborted")
local manual = spec.cutover ~= nil and spec.cutover.approval == "Manual"

actions["approve"] = {["disabled"] = not (manual and phase == "AwaitingApproval"), ["iconClass"] = "fa fa-fw fa-check"}
actions["abort"] = {["disabled"] = terminal, ["iconClass"] = "fa fa-fw fa-stop"}
actions["retry"] = {["disabled"] = not retryable, ["iconClass"] = "fa fa-fw fa-redo-alt"}
actions["suspend"] = {["disabled"] = suspended or terminal, ["iconClass"] = "fa fa-fw fa-pause"}
actions["resume"] = {["disabled"] = not suspended, ["iconClass"] = "fa fa-fw fa-play"}
return actions
