#!/usr/bin/env bash
# The newcomer's entry point. Two commands:
#   ./lab.sh demo    set up this machine, build the guest image, bring up the default
#                    two-VM LANA topology, show LANA counting traffic, tear it down
#   ./lab.sh test    set up this machine, build the guest image, run the whole test suite
# Anything after the command is passed on (to `lanalab demo` or to pytest).
set -euo pipefail
root=$(cd "$(dirname "$0")" && pwd)
cd "$root"

usage() { sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; }

cmd=${1:-}
[ -n "$cmd" ] || { usage; exit 2; }
shift

case "$cmd" in
demo)
	scripts/setup-host.sh
	.venv/bin/lanalab image build
	exec .venv/bin/lanalab demo "$@"
	;;
test)
	scripts/setup-host.sh
	.venv/bin/lanalab image build
	[ $# -eq 0 ] || exec .venv/bin/pytest "$@"
	# The whole suite: most VM tests keep one core busy with one guest, so two pytest
	# workers (whole files each, in order) run beside each other; then, alone, the tests
	# marked serial. LANALAB_TEST_WORKERS=1 runs everything in one process.
	workers=${LANALAB_TEST_WORKERS:-2}
	status=0
	.venv/bin/pytest -n "$workers" --dist loadfile -m "not serial" || status=$?
	echo "lab.sh: now the serial tests, one at a time"
	.venv/bin/pytest -m serial || status=$((status ? status : $?))
	exit "$status"
	;;
-h | --help | help)
	usage
	;;
*)
	echo "lab.sh: unknown command '$cmd'" >&2
	usage >&2
	exit 2
	;;
esac
