#!/usr/bin/env bash
# Test dependencies of crates/agentd-serve:
#   - npm oauth2-mock-server@8.2.3 (a real OIDC issuer + JWKS) in target/test-deps/oidc/node_modules
#   - promtool (Prometheus text-format checker) at target/test-deps/promtool/usr/bin/promtool
# Idempotent and quiet when both are present.
set -euo pipefail
cd "$(dirname "$0")/../.."
root="target/test-deps"

oidc="$root/oidc"
if [ ! -f "$oidc/node_modules/oauth2-mock-server/package.json" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "npm is required to install oauth2-mock-server (install Node.js 20)" >&2
    exit 1
  fi
  mkdir -p "$oidc"
  [ -f "$oidc/package.json" ] || echo '{"private": true}' > "$oidc/package.json"
  (cd "$oidc" && npm install --no-audit --no-fund --silent oauth2-mock-server@8.2.3)
  echo "installed oauth2-mock-server@8.2.3 into $oidc"
fi

promtool="$root/promtool/usr/bin/promtool"
if [ ! -x "$promtool" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && apt-get download prometheus >/dev/null 2>&1) || {
    apt-get update >/dev/null 2>&1
    (cd "$work" && apt-get download prometheus >/dev/null)
  }
  mkdir -p "$root/promtool"
  dpkg -x "$work"/prometheus_*.deb "$root/promtool"
  echo "installed promtool into $root/promtool"
fi
