# shellcheck shell=bash
# Shared by scripts/run, scripts/test and .ci/run (sourced, not run): make sure a virtualenv with Lukas
# installed exists, and activate it.
#
#   LUKAS_VENV   where the virtualenv lives (default: .venv in the repository)
#   PYTHON       the Python to build it with (default: the first of python3, python3.13, python3.12,
#                python3.11 that is 3.11 or newer)
#
# The package is (re)installed only when pyproject.toml changed since the last install, so reruns are fast.

LUKAS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LUKAS_VENV="${LUKAS_VENV:-$LUKAS_ROOT/.venv}"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

_lukas_say() { printf '%s\n' "$*" >&2; }

_lukas_python_ok() {
    "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' >/dev/null 2>&1
}

_lukas_find_python() {
    local candidate
    if [[ -n "${PYTHON:-}" ]]; then
        if _lukas_python_ok "$PYTHON"; then
            printf '%s\n' "$PYTHON"
            return 0
        fi
        _lukas_say "PYTHON=$PYTHON is not Python 3.11 or newer (or does not run)."
        return 1
    fi
    for candidate in python3 python3.13 python3.12 python3.11; do
        if command -v "$candidate" >/dev/null 2>&1 && _lukas_python_ok "$candidate"; then
            printf '%s\n' "$candidate"
            return 0
        fi
    done
    _lukas_say "Lukas needs Python 3.11 or newer, and none was found."
    _lukas_say "Found: $(python3 --version 2>&1 || echo 'no python3 at all')."
    _lukas_say "Install Python 3.11+ (e.g. 'apt-get install python3.11 python3.11-venv'), or point PYTHON at one:"
    _lukas_say "    PYTHON=/path/to/python3.12 $0"
    return 1
}

# lukas_venv [dev]: create/refresh the virtualenv and activate it. "dev" adds the test tools.
lukas_venv() {
    local extras="${1:-}"
    local python stamp want have spec
    if [[ ! -x "$LUKAS_VENV/bin/python" ]] || ! _lukas_python_ok "$LUKAS_VENV/bin/python"; then
        python="$(_lukas_find_python)" || exit 1
        _lukas_say "Creating a virtualenv in $LUKAS_VENV with $("$python" --version 2>&1) ..."
        rm -rf "$LUKAS_VENV"
        if ! "$python" -m venv "$LUKAS_VENV"; then
            _lukas_say "Could not create the virtualenv. On Debian/Ubuntu: apt-get install python3-venv"
            exit 1
        fi
    fi
    stamp="$LUKAS_VENV/.lukas-installed"
    want="$(cd "$LUKAS_ROOT" && "$LUKAS_VENV/bin/python" -c \
        'import hashlib, sys; print(hashlib.sha256(open("pyproject.toml", "rb").read()).hexdigest())')"
    have="$(cat "$stamp" 2>/dev/null || true)"
    # A dev install also serves scripts/run; a plain install does not serve scripts/test.
    if [[ "$have" != "$want dev" && "$have" != "$want $extras" ]]; then
        spec="."
        [[ "$extras" == "dev" ]] && spec=".[dev]"
        _lukas_say "Installing Lukas${extras:+ with the $extras tools} into $LUKAS_VENV (pyproject.toml changed) ..."
        rm -f "$stamp"
        if ! (cd "$LUKAS_ROOT" && "$LUKAS_VENV/bin/python" -m pip install -q -e "$spec"); then
            _lukas_say "Installing the package failed (see pip's messages above)."
            exit 1
        fi
        printf '%s %s\n' "$want" "$extras" >"$stamp"
    fi
    # shellcheck disable=SC1091
    source "$LUKAS_VENV/bin/activate"
}
