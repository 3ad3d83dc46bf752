#!/usr/bin/env bash
# Compile-fail checks of the lifetime rules (compile-fail/*.rs): each case
# must fail to compile against the host crate with exactly the error code
# in its `// expect: EXXXX` header, and no other. rustdoc's
# `compile_fail,EXXXX` does not check the code on a stable compiler; this
# does.
#
#   tools/host/compile-fail.sh            # every case
#   tools/host/compile-fail.sh case.rs    # some cases
#
# Uses the rustc that cargo uses (the host crate's toolchain). Exit status
# non-zero if a case compiles, fails with another code, or fails with more
# than one code.
set -uo pipefail
cd "$(dirname "$0")"

cases=("$@")
[ ${#cases[@]} = 0 ] && cases=(compile-fail/*.rs)

echo "compile-fail: building the host crate (cargo build --release --lib)"
rlib=$(cargo build --release --lib --message-format=json |
	jq -r 'select(.reason == "compiler-artifact" and .target.name == "kvm_rs_host") | .filenames[] | select(endswith(".rlib"))')
if [ -z "$rlib" ] || [ ! -f "$rlib" ]; then
	echo "compile-fail: build of the host crate failed" >&2
	exit 1
fi
rustc=${RUSTC:-rustc}	# what cargo used for the crate
echo "compile-fail: $("$rustc" --version), against $rlib"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail=0
for f in "${cases[@]}"; do
	want=$(sed -n 's|^// expect: \(E[0-9]\{4\}\)$|\1|p' "$f" | head -1)
	if [ -z "$want" ]; then
		echo "FAIL $f: no '// expect: EXXXX' header"
		fail=1
		continue
	fi
	log=$out/$(basename "$f").log
	if "$rustc" --edition 2021 --crate-type bin --emit=metadata -o "$out/case.rmeta" \
		--extern kvm_rs_host="$rlib" -L "dependency=$(dirname "$rlib")" \
		"$f" >"$log" 2>&1; then
		echo "FAIL $f: compiles, expected error[$want]"
		fail=1
		continue
	fi
	codes=$(grep -oE '^error\[E[0-9]{4}\]' "$log" | sed 's/^error\[\(.*\)\]$/\1/' | sort -u | tr '\n' ' ' | sed 's/ $//')
	# errors without a code (e.g. "lifetime may not live long enough")
	others=$(grep -E '^error: ' "$log" | grep -vcE '^error: aborting due to')
	if [ "$codes" = "$want" ] && [ "$others" = 0 ]; then
		echo "ok   $f: error[$want] ($(grep -m1 -E "^error\[$want\]" "$log" | sed 's/^error\[E[0-9]*\]: //'))"
	else
		echo "FAIL $f: expected only error[$want], got: ${codes:-no error code}, and $others error(s) without a code"
		sed 's/^/     | /' "$log" | head -40
		fail=1
	fi
done
if [ $fail = 0 ]; then
	echo "compile-fail: ${#cases[@]} case(s), each failed with its expected error code"
else
	echo "compile-fail: FAILED" >&2
fi
exit $fail
