#!/usr/bin/env bash
# Fails when the committed package-lock.json is not what `npm install` writes for package.json
# (e.g. package.json's "engines" changed and the lockfile was not regenerated).
#   bash .ci/lockfile-check.sh [PROJECT_DIR]      (default: the repository root)
# npm resolves the tree again in a temporary copy (lockfile only: nothing is installed, no install
# script runs), then .ci/lockfile-optional.mjs restores the platform entries this workplace's
# registry does not serve (404), exactly as after a local `npm install`; the result must equal the
# committed file.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
project=$(cd "${1:-$root}" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$project/package.json" "$project/package-lock.json" "$tmp/"
if [[ -f $project/.npmrc ]]; then cp "$project/.npmrc" "$tmp/"; fi
if ! (cd "$tmp" && npm install --package-lock-only --ignore-scripts --no-audit --no-fund \
  --loglevel=error >"$tmp/npm.log" 2>&1); then
  cat "$tmp/npm.log" >&2
  echo "lockfile check: npm install --package-lock-only failed (output above)" >&2
  exit 1
fi
node "$root/.ci/lockfile-optional.mjs" "$tmp/package-lock.json" >/dev/null
if ! diff -u --label "package-lock.json (committed)" --label "package-lock.json (npm install)" \
  "$project/package-lock.json" "$tmp/package-lock.json" >"$tmp/diff"; then
  head -n 40 "$tmp/diff" >&2
  echo "lockfile check: package-lock.json is not what npm install writes: run" \
    "\`npm install && node .ci/lockfile-optional.mjs\` and commit package-lock.json" >&2
  exit 1
fi
echo "lockfile check: package-lock.json matches package.json"
