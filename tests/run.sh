#!/usr/bin/env bash
# Install everything the test suite needs on a Debian machine (idempotent), then run lint and every test tier.
# Runs as root: the tests create real Unix accounts, start a real hub and drive Debian's Chromium.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PREFIX=${ATELIER_PREFIX:-/opt/atelier}
cd "$REPO"

bash hub_config/bootstrap.sh

# Browser tests use Debian's Chromium (Playwright cannot download its own browser here).
if ! command -v chromium >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q chromium fonts-dejavu-core
fi
# The browser tests audit pages with axe-core, injected from npm's package (a fixed version).
AXE_VERSION=4.14.1
if ! grep -qs "\"version\": \"$AXE_VERSION\"" "$PREFIX/test-node/node_modules/axe-core/package.json"; then
  npm install --prefix "$PREFIX/test-node" --no-audit --no-fund "axe-core@$AXE_VERSION"
fi
# PostgreSQL tests start a throwaway server from Debian's packages (initdb, pg_ctl, pg_dump, psql).
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q postgresql
fi
# The test extra's requirements alone: `pip install ".[test]"` would install Atelier itself again,
# under a hub that may be running from this prefix (hub_config/bootstrap.sh says why not).
requirements=$(mktemp)
"$PREFIX/env/bin/python" -c 'import sys, tomllib
print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["project"]["optional-dependencies"]["test"]))' \
  "$REPO/pyproject.toml" > "$requirements"
"$PREFIX/env/bin/python" -m pip install -q -r "$requirements"
rm -f "$requirements"

"$PREFIX/env/bin/ruff" check .
"$PREFIX/env/bin/ruff" format --check .
# Rooms import one way ([tool.importlinter] in pyproject.toml), checked on the copy just installed.
"$PREFIX/env/bin/lint-imports"

status=0
"$PREFIX/env/bin/pytest" tests "$@" || status=$?
# The hub and grading server modules once more with the hub database and every gradebook in a
# throwaway PostgreSQL server (database.url), as a cluster runs them (see docs/backup.md).
"$PREFIX/env/bin/pytest" --database=postgres tests/servers/test_hub.py \
  tests/servers/test_grading_hub.py tests/servers/test_grading_loop.py \
  tests/servers/test_grading_concurrency.py tests/servers/test_backup_restore.py || status=$?
exit "$status"
