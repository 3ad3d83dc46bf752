#!/usr/bin/env bash
# Build Documentation/kvm-rs with Sphinx, warnings as errors, so the rst
# cannot rot silently; also check that every page is in the toctree and
# that the README points at the pages it names.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cd "$KVMRS_ROOT"
command -v sphinx-build >/dev/null || die "docs: sphinx-build missing: run 'make setup' (python3-sphinx)"
out=build/docs
rm -rf "$out"
sphinx-build -q -W --keep-going -b html Documentation/kvm-rs "$out" || die "docs: Sphinx reported warnings or errors (see above)"
for f in Documentation/kvm-rs/*.rst; do
	page=$(basename "$f" .rst)
	[ "$page" = index ] || grep -qx "   $page" Documentation/kvm-rs/index.rst || die "docs: $f is not in index.rst's toctree"
done
for ref in $(grep -o 'Documentation/kvm-rs/[a-z_-]*\.rst' README.md | sort -u); do
	[ -f "$ref" ] || die "docs: README.md names $ref, which does not exist"
done
ok "docs: Documentation/kvm-rs builds without warnings ($out/index.html)"
