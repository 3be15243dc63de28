#!/usr/bin/env bash
# Install (or repair) Atelier on a Debian machine, then run an `atelier` verb if one is given.
#
#   bash hub_config/bootstrap.sh                 install only
#   bash hub_config/bootstrap.sh start [OPTIONS] install, then start the hub (default http://127.0.0.1:8000)
#
# Idempotent: a second run changes nothing that is already right. Runs as root: it creates the
# world-readable prefix /opt/atelier (trainee accounts must be able to run its Python, which a Python under
# /root would not allow), Debian packages, and the hub's state directory.
set -euo pipefail

PREFIX=${ATELIER_PREFIX:-/opt/atelier}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [ "$(id -u)" != 0 ]; then
  echo "atelier bootstrap: run this as root (it installs Debian packages and creates trainee accounts)." >&2
  exit 1
fi

# Debian packages: Debian's own Python (not a pyenv one under /root), git for workbook delivery, node for
# configurable-http-proxy.
missing=()
/usr/bin/python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
[ -e /usr/include/python3.11/Python.h ] || missing+=(python3-dev)
command -v git >/dev/null || missing+=(git)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
command -v gcc >/dev/null || missing+=(build-essential)
if [ ${#missing[@]} -gt 0 ]; then
  echo "atelier bootstrap: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q "${missing[@]}"
fi

# The hub's Python environment, world-readable.
if [ ! -x "$PREFIX/env/bin/python" ]; then
  echo "atelier bootstrap: creating $PREFIX/env from Debian's Python"
  mkdir -p "$PREFIX"
  /usr/bin/python3 -m venv "$PREFIX/env"
fi
chmod 755 "$PREFIX"
"$PREFIX/env/bin/python" -m pip install -q --upgrade pip wheel setuptools
# Never editable: services import the installed copy, not the checkout; contributors re-install
# changed code with tests/dev.sh (docs/contributing.md). setuptools builds in the checkout's build/
# and never empties it: a module that moved since the last install would be shipped again from
# there, beside its new place.
# The same source is not installed twice: a hub started from this prefix imports its services
# from it as they start, and files replaced under them (the tests' command run beside a hub that
# is starting) break the one starting. A clean git checkout is recognised by its commit, recorded
# after the install; anything else (changes, no git) is always installed, and tests/dev.sh
# forgets the record when it installs a work in progress.
STAMP="$PREFIX/env/atelier-source"
source_id=""
if git -C "$REPO" rev-parse --verify -q HEAD >/dev/null 2>&1 \
  && [ -z "$(git -C "$REPO" status --porcelain 2>/dev/null)" ]; then
  source_id=$(git -C "$REPO" rev-parse HEAD)
fi
if [ -n "$source_id" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$source_id" ]; then
  echo "atelier bootstrap: $PREFIX already holds this checkout ($source_id)"
else
  rm -f "$STAMP"
  rm -rf "$REPO/build"
  "$PREFIX/env/bin/python" -m pip install -q --upgrade "$REPO"
  if [ -n "$source_id" ]; then
    echo "$source_id" > "$STAMP"
  fi
fi

# Everything else (the proxy from npm, the state directory, JupyterLab's settings, the workbook
# repository) is a list of idempotent steps in Python.
"$PREFIX/env/bin/atelier" install --workbooks "$REPO/workbooks"

if [ $# -gt 0 ]; then
  exec "$PREFIX/env/bin/atelier" "$@"
fi
