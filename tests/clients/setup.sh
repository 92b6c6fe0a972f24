#!/usr/bin/env bash
# Installs the client matrix's clients; idempotent, and quick when everything is in place.
# Called by .ci/run before the tests and by the `clients` test itself.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exec 9>"$here/.setup.lock"
flock 9

# Java + Connector/J, Node.js + npm, python3-venv (Debian packages).
bash "$here/../../scripts/install-deps.sh" clients

# Python drivers, pinned, in a virtualenv of their own.
venv="$here/python/.venv"
if ! cmp -s "$here/python/requirements.txt" "$venv/.installed" 2>/dev/null; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/python/requirements.txt"
  cp "$here/python/requirements.txt" "$venv/.installed"
fi

# Node.js mysql2, as locked.
modules="$here/node/node_modules"
if ! cmp -s "$here/node/package-lock.json" "$modules/.installed" 2>/dev/null; then
  (cd "$here/node" && npm ci --silent --no-audit --no-fund)
  cp "$here/node/package-lock.json" "$modules/.installed"
fi
