// Runs Argo CD's Lua scripts (config/argocd/) through a real Lua interpreter: JSON in as a Lua
// table literal (the global `obj`), and the script's result back out as JSON.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const LUA = '/usr/bin/lua5.4';
/** Lua 5.1's compiler: Argo CD runs scripts in gopher-lua, which implements Lua 5.1. */
export const LUAC51 = '/usr/bin/luac5.1';

/** Library functions Lua 5.1 lacks (a 5.1 compiler accepts their calls; gopher-lua fails at run time). */
const NOT_IN_LUA51 = /\b(utf8\.|table\.(unpack|move|pack)\b|math\.(type|tointeger|ult)\b|string\.(pack|unpack|packsize)\b|coroutine\.isyieldable\b)/;

/** Why a script would not run in Lua 5.1 (its compiler's error, or a 5.2+ library call); undefined when it would. */
export function lua51Problem(path: string, script: string): string | undefined {
  try {
    execFileSync(LUAC51, ['-p', '-'], { input: script, stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (error) {
    return `${path}: ${String((error as { stderr?: Buffer }).stderr ?? error).trim()}`;
  }
  const call = NOT_IN_LUA51.exec(script);
  return call ? `${path}: ${call[0]} is not in Lua 5.1` : undefined;
}

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A Lua string literal; every byte outside printable ASCII (and quote/backslash) becomes a decimal escape. */
export function luaString(value: string): string {
  let out = '"';
  for (const byte of Buffer.from(value, 'utf8')) {
    const printable = byte >= 0x20 && byte < 0x7f && byte !== 0x22 && byte !== 0x5c;
    out += printable ? String.fromCharCode(byte) : `\\${String(byte).padStart(3, '0')}`;
  }
  return `${out}"`;
}

/** JSON value as a Lua expression: objects and arrays become table constructors, null becomes nil. */
export function toLua(value: Json): string {
  if (value === null) return 'nil';
  if (typeof value === 'boolean') return String(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`not representable in Lua: ${value}`);
    return String(value);
  }
  if (typeof value === 'string') return luaString(value);
  if (Array.isArray(value)) return `{${value.map(toLua).join(', ')}}`;
  return `{${Object.entries(value).map(([key, item]) => `[${luaString(key)}] = ${toLua(item)}`).join(', ')}}`;
}

/** A Lua JSON encoder for the result: a table with keys 1..n is an array, any other table an object (keys sorted). */
const ENCODER = `
local function encode(v)
  local t = type(v)
  if t == "nil" then return "null" end
  if t == "boolean" then return tostring(v) end
  if t == "number" then
    if v == math.floor(v) then return string.format("%d", v) end
    return string.format("%.17g", v)
  end
  if t == "string" then
    return '"' .. v:gsub('[%c"\\\\]', function(c) return string.format("\\\\u%04x", c:byte()) end) .. '"'
  end
  local n = 0
  for _ in pairs(v) do n = n + 1 end
  if n > 0 and #v == n then
    local parts = {}
    for i = 1, n do parts[i] = encode(v[i]) end
    return "[" .. table.concat(parts, ",") .. "]"
  end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = encode(tostring(k)) .. ":" .. encode(v[k]) end
  return "{" .. table.concat(parts, ",") .. "}"
end
`;

/** Runs a script with `obj` set (and os.time fixed, when given); returns what it returned, as JSON. */
export function runLuaScript(script: string, obj: Json, options: { time?: number } = {}): unknown {
  if (!existsSync(LUA)) throw new Error(`${LUA} not found: install it (apt-get install -y lua5.4) to run the Argo CD Lua tests`);
  const program = [
    ENCODER,
    options.time === undefined ? '' : `os.time = function() return ${String(options.time)} end`,
    `obj = ${toLua(obj)}`,
    'local result = (function()',
    script,
    'end)()',
    'io.write(encode(result))',
    '',
  ].join('\n');
  return JSON.parse(execFileSync(LUA, ['-'], { input: program, encoding: 'utf8' })) as unknown;
}
