# shellcheck shell=bash
# Shared by scripts/run, scripts/test and .ci/run (sourced, not run): make the virtualenv match uv.lock, with
# Lukas installed in it, and activate it. uv does the work; when it is not on PATH it is installed from PyPI
# into ~/.cache/lukas-the-bear/uv (once per machine).
#
#   LUKAS_VENV   where the virtualenv lives (default: .venv in the repository)
#   PYTHON       the Python to build it with (default: uv picks a Python 3.11+ from PATH; it never downloads one)

LUKAS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LUKAS_VENV="${LUKAS_VENV:-$LUKAS_ROOT/.venv}"
export UV_PROJECT_ENVIRONMENT="$LUKAS_VENV" UV_PYTHON_DOWNLOADS=never
# The machine's certificate store, so a company proxy's CA (installed there) is trusted as pip trusts it.
export UV_SYSTEM_CERTS="${UV_SYSTEM_CERTS:-1}"

_lukas_say() { printf '%s\n' "$*" >&2; }

# Prints the uv to use, installing it first if needed.
_lukas_uv() {
    local home="${XDG_CACHE_HOME:-$HOME/.cache}/lukas-the-bear/uv" python="${PYTHON:-python3}"
    if command -v uv >/dev/null 2>&1; then
        command -v uv
        return 0
    fi
    if [[ ! -x "$home/bin/uv" ]]; then
        _lukas_say "Installing uv (the installer Lukas's scripts use) from PyPI into $home ..."
        rm -rf "$home"
        if ! { "$python" -m venv "$home" && "$home/bin/python" -m pip install -q --disable-pip-version-check \
            'uv>=0.9,<1'; }; then
            _lukas_say "Could not install uv with $python. Install it yourself ('pip install uv', see"
            _lukas_say "https://docs.astral.sh/uv/), or on Debian/Ubuntu first: apt-get install python3-venv"
            rm -rf "$home"
            return 1
        fi
    fi
    printf '%s\n' "$home/bin/uv"
}

# lukas_venv [EXTRA ...]: install Lukas and the locked dependencies, plus each named extra of pyproject.toml
# (dev: the test tools; e.g. `lukas_venv dev`). Packages from other extras already installed are kept.
lukas_venv() {
    local uv extra args=(--frozen --inexact)
    uv="$(_lukas_uv)" || exit 1
    for extra in "$@"; do args+=(--extra "$extra"); done
    [[ -n "${PYTHON:-}" ]] && args+=(--python "$PYTHON")
    if ! "$uv" lock --project "$LUKAS_ROOT" --check --offline --quiet >/dev/null 2>&1; then
        if [[ -n "${CI:-}" ]]; then
            _lukas_say "uv.lock does not match pyproject.toml: run 'uv lock' and commit uv.lock (see CONTRIBUTING.md)."
            exit 1
        fi
        _lukas_say "pyproject.toml changed since uv.lock was written: updating uv.lock (commit it with your change) ..."
        "$uv" lock --project "$LUKAS_ROOT" || exit 1
    fi
    [[ -x "$LUKAS_VENV/bin/python" ]] || _lukas_say "Setting up $LUKAS_VENV from uv.lock${*:+ (extras: $*)} ..."
    if ! "$uv" sync --project "$LUKAS_ROOT" "${args[@]}"; then
        _lukas_say "Setting up $LUKAS_VENV failed (see uv's messages above). Lukas needs Python 3.11 or newer:"
        _lukas_say "install one (e.g. apt-get install python3.12) or point PYTHON at it: PYTHON=/path/to/python3.12 $0"
        exit 1
    fi
    # shellcheck disable=SC1091
    source "$LUKAS_VENV/bin/activate"
}
