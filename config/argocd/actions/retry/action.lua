-- Runs the failed (or aborted) step again: a new token in the annotation dataops.dev/retry (the
-- operator keeps a-z and 0-9, the last 8, and starts run <run>-r<token>), and the abort annotation
-- removed, since the operator refuses a retry while it is set. The token is the time in base 36,
-- new every second. Plain Lua 5.1.
local function base36(n)
  local digits = "0123456789abcdefghijklmnopqrstuvwxyz"
  local out = ""
  n = math.floor(n)
  repeat
    local d = n % 36
    out = string.sub(digits, d + 1, d + 1) .. out
    n = math.floor(n / 36)
  until n == 0
  return out
end

if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["dataops.dev/retry"] = base36(os.time())
obj.metadata.annotations["dataops.dev/abort"] = nil
return obj
