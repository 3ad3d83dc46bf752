#!/usr/bin/env bash
# scripts/checkpatch.pl --strict on the C patch series, from the reference
# source tree. FILE_PATH_CHANGES ("does MAINTAINERS need updating?") is
# ignored: the series applies to a copy of arch/x86/kvm only, where there is
# no MAINTAINERS file to update.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
src=$KVMRS_CACHE/src/linux-source-$KVER
[ -f "$src/scripts/checkpatch.pl" ] || die "checkpatch: $src missing: run 'make kernel' first"
rc=0
for p in "$KVMRS_ROOT"/patches/*/*.patch; do
	if out=$(cd "$src" && perl scripts/checkpatch.pl --no-tree --strict --ignore FILE_PATH_CHANGES -q "$p" 2>&1); then
		echo "ok - $(basename "$p")"
	else
		printf '%s\n' "$out"; echo "not ok - $(basename "$p")"; rc=1
	fi
done
exit $rc
