#!/usr/bin/env bash
# Installs playwright-core (as locked) for the console browser test; idempotent and quick when in
# place. The browser itself is Debian's chromium (.ci/run installs it): playwright downloads none.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exec 9>"$here/.setup.lock"
flock 9
modules="$here/node_modules"
if ! cmp -s "$here/package-lock.json" "$modules/.installed" 2>/dev/null; then
  (cd "$here" && npm ci --silent --no-audit --no-fund)
  cp "$here/package-lock.json" "$modules/.installed"
fi
