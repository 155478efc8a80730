#!/usr/bin/env bash
# Make .venv (Python 3.11) and install a requirements file into it.
# Usage: scripts/venv.sh requirements.txt|requirements-dev.txt
# Re-running is cheap: pip runs only when the requirements file changed since the last install.
# VENV=DIR uses another folder than .venv. VENV_EXACT=1 deletes the folder and starts afresh when
# the requirements changed: pip never uninstalls, so a package a removed line had brought in would
# otherwise stay and hide the gap (scripts/check_production_install.sh needs exactly the file).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh

req="${1:-requirements.txt}"
python="${PYTHON:-python3}"
venv="${VENV:-.venv}"

# One stamp per requirements file: the hash of it and of what it includes (-r lines, one level:
# requirements-dev.txt includes requirements.txt and requirements-ml.txt).
stamp="$venv/.installed-$(basename "$req")"
includes="$(sed -n 's/^-r[[:space:]]*//p' "$req" | grep -vx 'requirements.txt' || true)"
# shellcheck disable=SC2086
want="$(cat "$req" requirements.txt $includes | sha256sum | cut -d' ' -f1)"
if [ -n "${VENV_EXACT:-}" ] && [ -d "$venv" ] && [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    say "$req changed: deleting $venv to install it afresh"
    rm -rf "$venv"
fi

if [ ! -x "$venv/bin/python" ]; then
    if ! command -v "$python" >/dev/null 2>&1 || ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
        say "Python's venv module is missing: installing python3 and python3-venv with apt"
        apt_install python3 python3-venv
    fi
    say "Creating $venv with $("$python" --version 2>&1)"
    "$python" -m venv "$venv"
fi

if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    say "Installing $req into $venv"
    "$venv/bin/python" -m pip install --disable-pip-version-check -q --upgrade pip
    "$venv/bin/python" -m pip install --disable-pip-version-check -q -r "$req"
    echo "$want" >"$stamp"
fi
