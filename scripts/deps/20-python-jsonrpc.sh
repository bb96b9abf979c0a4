#!/usr/bin/env bash
# Makes sure python3 (3.8+, standard library only) is available for the agentd-intel JSON-RPC
# interop tests, which start crates/agentd-intel/tests/support/jsonrpc_server.py on a temporary
# Unix socket and on an ephemeral 127.0.0.1 port.
#
# Idempotent and quiet when python3 is already on PATH; otherwise installs Debian's
# python3.
set -euo pipefail

if command -v python3 >/dev/null 2>&1 && python3 -c 'import sys; sys.exit(sys.version_info < (3, 8))'; then
  exit 0
fi

echo "installing python3 (Debian package python3)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq python3 >/dev/null
python3 -c 'import sys; sys.exit(sys.version_info < (3, 8))'
