#!/usr/bin/env bash
# Bad input gives one clear error line and changes nothing. Each case runs
# the real entry point and asserts on its exit status and message.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cd "$KVMRS_ROOT"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ref=$(scripts/kernel.sh --print-dir)

# expect <name> <pattern> <command...>: the command must fail, and its last
# stderr line must match the pattern.
expect() {
	local name=$1 pattern=$2; shift 2
	local before after out rc
	before=$(ls build 2>/dev/null | sort | md5sum)
	out=$("$@" 2>&1 >/dev/null); rc=$?
	after=$(ls build 2>/dev/null | sort | md5sum)
	local last
	last=$(printf '%s\n' "$out" | grep -v '^make' | tail -1)
	if [ $rc != 0 ] && printf '%s' "$last" | grep -q -- "$pattern" && [ "$before" = "$after" ]; then
		echo "ok - $name: $last"; pass=$((pass + 1))
	else
		echo "not ok - $name: rc=$rc, expected /$pattern/, got: $last"; fail=$((fail + 1))
	fi
}

fake_tree() { # fake_tree <dir> <release> <config lines...>
	local d=$1 rel=$2; shift 2
	mkdir -p "$d/include/config" "$d/rust"
	echo "$rel" > "$d/include/config/kernel.release"
	printf '%s\n' "$@" > "$d/.config"
	touch "$d/Makefile"
}

expect "nonexistent KDIR" "does not exist" scripts/build.sh --kdir "$tmp/nope"
mkdir -p "$tmp/empty"
expect "KDIR that is not a build tree" "not a configured kernel build tree" scripts/build.sh --kdir "$tmp/empty"
fake_tree "$tmp/norust" 7.3.4 CONFIG_KVM=m
expect "KDIR without CONFIG_RUST" "without Rust support" scripts/build.sh --kdir "$tmp/norust"
fake_tree "$tmp/old" 6.1.0-42-amd64 CONFIG_RUST=y CONFIG_KVM=m
expect "unsupported kernel version" "kernel 6.1.0-42-amd64 is not supported" scripts/build.sh --kdir "$tmp/old"
fake_tree "$tmp/nometa" 7.3.4 CONFIG_RUST=y CONFIG_KVM=m
expect "Rust tree without built metadata" "no Rust metadata" scripts/build.sh --kdir "$tmp/nometa"
fake_tree "$tmp/nokvm" 7.3.4 CONFIG_RUST=y
expect "tree without CONFIG_KVM=m" "needs CONFIG_KVM=m" scripts/build.sh --kdir "$tmp/nokvm"
# The same for a 6.12 tree: a pristine (unconfigured, unbuilt) source tree,
# one without CONFIG_RUST, and a headers-only tree (configured and built,
# but no Rust metadata, as a distribution's linux-headers package).
mkdir -p "$tmp/src612"; printf 'VERSION = 6\nPATCHLEVEL = 12\n' > "$tmp/src612/Makefile"
expect "unbuilt 6.12 source tree" "not a configured kernel build tree" scripts/build.sh --kdir "$tmp/src612"
fake_tree "$tmp/norust612" 6.12.118 CONFIG_KVM=m
expect "6.12 tree without CONFIG_RUST" "without Rust support" scripts/build.sh --kdir "$tmp/norust612"
fake_tree "$tmp/headers612" 6.12.118-amd64 CONFIG_RUST=y CONFIG_KVM=m
expect "6.12 headers-only tree" "no Rust metadata (rust/libkernel.rmeta; a distribution's headers package has none)" scripts/build.sh --kdir "$tmp/headers612"
expect "unsupported KVER" "KVER=6.1 is not a supported kernel series (supported: 7.3 6.12)" env KVER=6.1 scripts/kernel.sh
expect "mismatched rustc" "but KDIR was built with rustc" env RUSTC="$(command -v rustc)" scripts/build.sh --kdir "$ref"
expect "missing bindgen" "bindgen not found" env BINDGEN=/nonexistent/bindgen scripts/build.sh --kdir "$ref"
expect "load on a host not running KDIR's kernel" "the running kernel is $(uname -r) but KDIR is" scripts/load.sh --kdir "$ref"
expect "unknown kernel flavor" "unknown flavor" scripts/kernel.sh --flavor nonsense
expect "unknown VM machine" "--machine wants 'amd' or 'intel'" scripts/vm.sh --machine arm
expect "QEMU option with the Intel machine" "are QEMU options" scripts/vm.sh --machine intel --tcg single
expect "two CPUs with the Intel machine" "runs one CPU" scripts/vm.sh --machine intel --smp 2
expect "AMD parameters with the Intel machine" "use --intel-params" scripts/vm.sh --machine intel --amd-params npt=1
expect "missing Bochs" "bochs missing (Debian package 'bochs'" env BOCHS=/nonexistent/bochs scripts/vm.sh --machine intel
expect "bad VM memory size" "--mem wants a size in M or G" scripts/vm.sh --mem 2T

# A signature drift between include/kvm_rs.h and a Rust entry point must fail
# the build (the check_ffi_signature! assertions), not link. Build a copy of
# the repository whose header declares `gfn` as u32.
if [ -d "build/current/arch/x86/kvm" ]; then
	mkdir -p "$tmp/repo"
	rsync -a --exclude build --exclude tools/host/target ./ "$tmp/repo/"
	sed -i 's/^int kvm_rs_tdp_get_walk(const struct kvm_rs_root \*root, u64 gfn,/int kvm_rs_tdp_get_walk(const struct kvm_rs_root *root, u32 gfn,/' "$tmp/repo/include/kvm_rs.h"
	grep -q 'u32 gfn' "$tmp/repo/include/kvm_rs.h" || { echo "not ok - signature drift: sed did not apply"; fail=$((fail + 1)); }
	# Start from the built tree so that only what the header touches rebuilds.
	mkdir -p "$tmp/repo/build"
	cp -a "build/$(readlink build/current)" "$tmp/repo/build/"
	out=$("$tmp/repo/scripts/build.sh" --kdir "$ref" 2>&1); rc=$?
	e0308=$(grep -m1 'error\[E0308\]' <<<"$out")
	if [ $rc != 0 ] && [ -n "$e0308" ] && grep -q 'check_ffi_signature' <<<"$out"; then
		echo "ok - signature drift in include/kvm_rs.h fails the build: $e0308"; pass=$((pass + 1))
	else
		printf '%s\n' "$out" | tail -20
		echo "not ok - signature drift did not fail the build as expected (rc=$rc)"; fail=$((fail + 1))
	fi
else
	echo "not ok - signature drift: build/current missing (run make first)"; fail=$((fail + 1))
fi

echo "errors: $pass passed, $fail failed"
[ $fail = 0 ]
