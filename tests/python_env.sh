#!/bin/sh
# The Python environment of `make test`, set up without root where it can be:
# a virtual environment at VENV with every package of REQUIREMENTS, made from
# BASE (python3). It sees the system's site-packages, so what the system
# already has (numpy and gguf from apt or .ci/run) is used as it is and
# needs no network; the rest comes from PyPI through pip (whose cache makes
# a second environment fast). Whatever cannot be set up is said plainly and
# the run goes on: the tests that need it print SKIP.
#
# usage: tests/python_env.sh VENV REQUIREMENTS BASE OUT
# Writes the interpreter the tests should use to OUT (empty: none).
set -u
venv=$1 req=$2 base=$3 out=$4
say() { echo "python-env: $*"; }
mkdir -p "$(dirname "$out")" && : >"$out"
if [ -z "$base" ] || ! command -v "$base" >/dev/null 2>&1; then
  say "no python3 here: the Python oracle tests will skip (Debian: apt-get install python3 python3-venv)"
  exit 0
fi
if [ ! -x "$venv/bin/python" ]; then
  mkdir -p "$(dirname "$venv")"
  if ! "$base" -m venv --system-site-packages "$venv" >"$venv.log" 2>&1; then
    say "cannot create a virtual environment with $base ($(tail -n 1 "$venv.log")); using $base" \
        "as it is (Debian: apt-get install python3-venv)"
    rm -rf "$venv"
    echo "$base" >"$out"
    py=$base
  fi
fi
py=${py:-$venv/bin/python}
# Installed once per content of REQUIREMENTS (a stamp keeps the copy that
# succeeded); a failure is retried on the next run.
if [ "$py" != "$base" ] && ! cmp -s "$req" "$venv/requirements.done"; then
  say "installing $(grep -cv '^[[:space:]]*\(#\|$\)' "$req") requirements of $req into $venv"
  if "$py" -m pip install --disable-pip-version-check -q --retries 1 --timeout 20 \
       -r "$req" >"$venv/pip.log" 2>&1; then
    cp "$req" "$venv/requirements.done"
  else
    say "pip could not install all of $req (offline, or a build failed: $venv/pip.log says)"
  fi
fi
# Which requirements are missing, by distribution name (one interpreter
# start: pip show per name costs seconds each).
missing=$("$py" - "$req" <<'PY' 2>/dev/null
import re, sys
from importlib import metadata
names = (re.split(r"[<>=!~;\[\s#@]", line.strip())[0] for line in open(sys.argv[1]))
out = []
for name in filter(None, names):
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        out.append(name)
print(" ".join(out))
PY
) || missing="(could not check)"
if [ -n "$missing" ]; then
  say "missing: $missing; the tests that need them will print SKIP"
else
  say "ready: $py has every package of $req"
fi
echo "$py" >"$out"
