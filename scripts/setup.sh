#!/usr/bin/env bash
# One command for a fresh machine: the Debian packages the tests use (when missing), the npm
# dependencies (Node 24 among them), and the control-plane binaries (built once, then cached).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Debian package -> a file that proves it is installed.
declare -A packages=(
  [postgresql]=/usr/lib/postgresql
  [mariadb-server]=/usr/sbin/mariadbd
  [mariadb-client]=/usr/bin/mariadb
  [openssl]=/usr/bin/openssl
  [curl]=/usr/bin/curl
  [util-linux]=/usr/bin/unshare
  [shellcheck]=/usr/bin/shellcheck # scripts/*.sh are checked by test/e2e/packaging.test.ts
  [pgloader]=/usr/bin/pgloader # the copy benchmark compares against it
  [lua5.4]=/usr/bin/lua5.4 # the Argo CD health check and actions are tested with a real Lua interpreter
  [lua5.1]=/usr/bin/luac5.1 # … and compiled by Lua 5.1's own compiler: Argo CD runs gopher-lua, a Lua 5.1
  [prometheus]=/usr/bin/promtool # promtool checks and unit-tests the chart's alert rules
)
missing=()
for package in "${!packages[@]}"; do
  [[ -e "${packages[$package]}" ]] || missing+=("$package")
done
if (( ${#missing[@]} > 0 )); then
  sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    sudo=(sudo)
  fi
  echo "installing Debian packages: ${missing[*]}"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# package-lock.json pins every npm dependency; `allowScripts` in package.json approves the one
# install script needed (the `node` package fetching the Node 24 binary package).
npm ci --no-audit --no-fund

bash scripts/build-controlplane.sh >/dev/null
bash scripts/build-tools.sh >/dev/null # helm and kustomize for test/e2e/packaging.test.ts
echo "setup done: run \`npm test\`"
