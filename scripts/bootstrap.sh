#!/bin/sh
# Installs what `make test` and `make demo` need on a fresh Debian machine.
# Idempotent: each step is skipped when its stamp (or the tool) is already there.
#   scripts/bootstrap.sh [--bpy] [--browser]
set -eu
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
WANT_BPY=0
WANT_BROWSER=0
for arg in "$@"; do
    case "$arg" in
        --bpy) WANT_BPY=1 ;;
        --browser) WANT_BROWSER=1 ;;
        *) echo "bootstrap: unknown option $arg" >&2; exit 2 ;;
    esac
done

if ! "$PY" -c 'import sys; sys.exit(sys.version_info[:2] < (3, 11))' 2>/dev/null; then
    echo "bootstrap: Python 3.11 or newer is needed (tried '$PY'; set PYTHON=/path/to/python3.11)" >&2
    exit 1
fi

# --- system packages -----------------------------------------------------
missing=""
# Debian's python3 has no ensurepip (so no venv) without python3-venv.
"$PY" -c 'import ensurepip' 2>/dev/null || missing="$missing python3-venv"
command -v blender >/dev/null 2>&1 || missing="$missing blender"
if [ "$WANT_BROWSER" = 1 ]; then
    [ -x /usr/bin/chromium ] || missing="$missing chromium"
    command -v xvfb-run >/dev/null 2>&1 || missing="$missing xvfb xauth libgl1-mesa-dri"
    command -v xdotool >/dev/null 2>&1 || missing="$missing xdotool"  # key presses in the GUI test
fi
if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "bootstrap: installing Debian packages:$missing"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
    else
        echo "bootstrap: missing system packages:$missing" >&2
        echo "bootstrap: install them with: sudo apt-get install -y$missing" >&2
        exit 1
    fi
fi

# pip retries a refused connection, not a download cut off half-way
# ("IncompleteRead"), which a busy mirror does now and then: try again.
pip_install() {
    venv=$1; shift
    for attempt in 1 2 3; do
        "$venv/bin/pip" install -q "$@" && return 0
        [ "$attempt" = 3 ] && break
        echo "bootstrap: pip install $* failed (attempt $attempt of 3); trying again in 10 s" >&2
        sleep 10
    done
    echo "bootstrap: pip install $* failed 3 times; check the network and run make again" >&2
    return 1
}

# --- the project's virtual environment -----------------------------------
if [ ! -f .venv/.stamp ] || [ pyproject.toml -nt .venv/.stamp ]; then
    echo "bootstrap: creating .venv"
    "$PY" -m venv .venv
    pip_install .venv --upgrade pip
    pip_install .venv -e '.[dev]'
    touch .venv/.stamp
fi

# --- Blender 5.0 as a Python module, for the 5.x code paths --------------
if [ "$WANT_BPY" = 1 ] && [ ! -f .venv-bpy/.stamp ]; then
    echo "bootstrap: creating .venv-bpy with bpy==5.0.1 (about 400 MB, once)"
    "$PY" -m venv .venv-bpy
    pip_install .venv-bpy --upgrade pip
    pip_install .venv-bpy bpy==5.0.1
    touch .venv-bpy/.stamp
fi
