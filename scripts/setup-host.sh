#!/usr/bin/env bash
# Prepare this Debian machine for the LANA lab: Debian packages, then the Python venv.
# Idempotent and cached: a second run with nothing changed takes a second or two.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv"
stamp_dir="$root/.cache/setup"
mkdir -p "$stamp_dir"

say() { printf '[setup %3ds] %s\n' "$SECONDS" "$*"; }
die() { printf 'setup: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (sudo $0): the lab installs Debian packages and creates taps and bridges"
command -v apt-get >/dev/null || die "this set-up needs a Debian (bookworm) machine with apt-get"

# --- Debian packages ------------------------------------------------------------------
mapfile -t wanted < <(sed -e 's/#.*//' -e '/^\s*$/d' "$root/scripts/host-packages.txt")
missing=()
for pkg in "${wanted[@]}"; do
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
	say "installing ${#missing[@]} Debian packages: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq || die "apt-get update failed: check this machine's Debian mirror in /etc/apt/sources.list.d/"
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$stamp_dir/apt.log" 2>&1 ||
		die "apt-get install failed; the log is $stamp_dir/apt.log"
else
	say "Debian packages: all ${#wanted[@]} present"
fi

# --- Python virtual environment ----------------------------------------------------------
py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3)
want_stamp=$(cat "$root/pyproject.toml" <("$py" -V 2>&1) | sha256sum | cut -c1-16)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp_dir/venv" 2>/dev/null)" != "$want_stamp" ]; then
	say "creating the Python environment in $venv"
	[ -x "$venv/bin/python" ] || "$py" -m venv "$venv" || die "python3 -m venv failed (is python3-venv installed?)"
	"$venv/bin/pip" install -q --upgrade pip >"$stamp_dir/pip.log" 2>&1 || true
	"$venv/bin/pip" install -q -e "$root[dev,libvirt,notebooks,bench,hub]" >>"$stamp_dir/pip.log" 2>&1 ||
		die "pip install failed; the log is $stamp_dir/pip.log"
	echo "$want_stamp" >"$stamp_dir/venv"
else
	say "Python environment: up to date ($venv)"
fi
say "set-up done"
