#!/usr/bin/env bash
# Installs the npm MCP servers that the agentd-mcp interop tests start
# (crates/agentd-mcp/tests/it/everything.rs):
#
#   target/test-deps/mcp/node_modules/@modelcontextprotocol/server-everything/dist/index.js
#
# Idempotent and quiet when the pinned version is already there. Node.js 20+ and npm are needed;
# they are installed from Debian's packages only when missing.
set -euo pipefail
cd "$(dirname "$0")/../.."

EVERYTHING_VERSION="2026.8.31"
DIR="target/test-deps/mcp"
PACKAGE_JSON="$DIR/node_modules/@modelcontextprotocol/server-everything/package.json"

installed_version() {
  [ -f "$PACKAGE_JSON" ] || return 0
  sed -n 's/^[[:space:]]*"version":[[:space:]]*"\([^"]*\)".*/\1/p' "$PACKAGE_JSON" | head -n 1
}

if [ "$(installed_version)" = "$EVERYTHING_VERSION" ]; then
  exit 0
fi

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "installing nodejs and npm (Debian packages)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq nodejs npm >/dev/null
fi

mkdir -p "$DIR"
# A package.json of our own keeps npm from walking up to a parent project.
[ -f "$DIR/package.json" ] || printf '{"name":"agentd-mcp-test-deps","private":true}\n' >"$DIR/package.json"
echo "installing @modelcontextprotocol/server-everything@$EVERYTHING_VERSION into $DIR"
(cd "$DIR" && npm install --no-audit --no-fund --loglevel=error \
  "@modelcontextprotocol/server-everything@$EVERYTHING_VERSION" >/dev/null)

if [ "$(installed_version)" != "$EVERYTHING_VERSION" ]; then
  echo "server-everything $EVERYTHING_VERSION is not installed in $DIR after npm install" >&2
  exit 1
fi
