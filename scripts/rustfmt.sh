#!/usr/bin/env bash
# Check (default) or apply (--fix) rustfmt on rust/ and tools/host/, with the
# reference kernel tree's .rustfmt.toml, as `make rustfmtcheck` does in-tree.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

mode=--check
[ "${1:-}" = --fix ] && mode=""
rustfmt=${RUSTFMT:-/usr/bin/rustfmt}
[ -x "$rustfmt" ] || rustfmt=$(command -v rustfmt) || die "rustfmt: not found: run 'make setup'"
cfg=$KVMRS_CACHE/src/linux-source-$KVER/.rustfmt.toml
[ -f "$cfg" ] || die "rustfmt: $cfg missing: run 'make kernel' first"
files=("$KVMRS_ROOT"/rust/*.rs $(find "$KVMRS_ROOT/tools/host" -name '*.rs' -not -path '*/target/*'))
if "$rustfmt" $mode --edition 2021 --config-path "$cfg" "${files[@]}"; then
	ok "rustfmt: ${#files[@]} files ${mode:+clean}${mode:-formatted}"
else
	die "rustfmt: formatting differs (run 'make fmt' to fix)"
fi
