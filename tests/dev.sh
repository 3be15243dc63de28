#!/usr/bin/env bash
# The contributor's loop: re-install this checkout's code into the prefix (a few seconds), then run
# pytest with the arguments given.
#
#   bash tests/dev.sh tests/unit                       the unit tier
#   bash tests/dev.sh tests/unit/test_binder.py -x     one module, stop at the first failure
#   bash tests/dev.sh -m server tests/servers          another tier
#
# Services and tests import the installed copy in the prefix, never the checkout (a trainee's server
# cannot read /root, and what runs is what was installed), so an edit counts only once it is
# installed again. This re-installs the package alone: no dependencies, no build isolation, and the
# in-tree build/ folder removed first (setuptools would otherwise ship a module deleted since).
# Prepare the prefix once with `bash tests/run.sh` (everything) or `bash hub_config/bootstrap.sh`
# and `pip install ".[test]"`; run them again after changing a dependency or what `atelier install`
# sets up. See docs/contributing.md.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export ATELIER_PREFIX=${ATELIER_PREFIX:-/opt/atelier}
PYTHON=$ATELIER_PREFIX/env/bin/python
cd "$REPO"

if [ ! -x "$ATELIER_PREFIX/env/bin/pytest" ]; then
  echo "atelier dev: no pytest in $ATELIER_PREFIX/env: run \`bash tests/run.sh\` once first" \
    "(it installs the prefix and the test extra)." >&2
  exit 1
fi
rm -rf build
# What is installed now is no commit: the bootstrap must install its checkout again.
rm -f "$ATELIER_PREFIX/env/atelier-source"
# pip's output (setuptools' warnings) only when it fails: then the tests must not run against the
# copy installed before.
PIP_FAST=(--quiet --no-deps --no-build-isolation --force-reinstall)
if ! log=$("$PYTHON" -m pip install "${PIP_FAST[@]}" . 2>&1); then
  printf '%s\n' "$log" >&2
  echo "atelier dev: installing $REPO into $ATELIER_PREFIX failed (above)." >&2
  exit 1
fi
exec "$ATELIER_PREFIX/env/bin/pytest" "$@"
