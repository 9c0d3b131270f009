#!/bin/sh
# System packages setlist needs beyond PyPI: libVLC for live playback (and python3-venv
# where the interpreter lacks venv), and ffmpeg for the benchmarks only (bench/ measures
# real music with its ebur128 filter as an outside reference; setlist never runs it). Installs them when run as root with apt; otherwise
# prints the one line that would. Quiet and quick when everything is already there.
set -eu

PYTHON=${PYTHON:-python3}
PKGS="libvlc5 vlc-plugin-base ffmpeg"
missing=""

if command -v dpkg-query >/dev/null 2>&1; then
    for pkg in $PKGS; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
            missing="$missing $pkg"
        fi
    done
    if ! "$PYTHON" -c "import venv, ensurepip" >/dev/null 2>&1; then
        missing="$missing python3-venv"
    fi
elif ldconfig -p 2>/dev/null | grep -q "libvlc\.so"; then
    exit 0
else
    echo "setlist: libVLC not found; live playback needs VLC (e.g. 'brew install --cask vlc' or your system's vlc package)"
    exit 0
fi

[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setlist: installing system packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
else
    echo "setlist: missing system packages:$missing"
    echo "setlist: install them with: sudo apt-get install -y --no-install-recommends$missing"
fi
