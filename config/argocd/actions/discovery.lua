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
-- Retry as the operator's retryPoint (src/controller/ledger.ts) decides it: the latest step of the
-- ledger (status.steps) that was aborted, or failed for a reason a retry may resume. A status
-- written before the ledger is judged by its Ready reason, as the operator upgrades it.
local retryableReasons = {JobFailed = true, RollbackFailed = true, InvalidSpec = true, PlanRefused = true}
local resumeOrder = {"rollback", "switch", "validate", "sync", "copy", "schema", "start"}
local retryable = false
if phase == "Failed" and status.steps ~= nil then
  for _, name in ipairs(resumeOrder) do
    for _, entry in ipairs(status.steps) do
      if entry.step == name and (entry.outcome == "Aborted"
          or (entry.outcome == "Failed" and retryableReasons[entry.reason or "JobFailed"])) then
        retryable = true
      end
    end
  end
elseif phase == "Failed" then
  retryable = readyReason == "JobFailed" or readyReason == "RollbackFailed" or readyReason == "Aborted"
end
local manual = spec.cutover ~= nil and spec.cutover.approval == "Manual"

actions["approve"] = {["disabled"] = not (manual and phase == "AwaitingApproval"), ["iconClass"] = "fa fa-fw fa-check"}
actions["abort"] = {["disabled"] = terminal, ["iconClass"] = "fa fa-fw fa-stop"}
actions["retry"] = {["disabled"] = not retryable, ["iconClass"] = "fa fa-fw fa-redo-alt"}
actions["suspend"] = {["disabled"] = suspended or terminal, ["iconClass"] = "fa fa-fw fa-pause"}
actions["resume"] = {["disabled"] = not suspended, ["iconClass"] = "fa fa-fw fa-play"}
return actions
