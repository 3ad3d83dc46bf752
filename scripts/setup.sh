#!/usr/bin/env bash
# Install everything kvm-rs needs on a Debian 12 (bookworm) machine.
# Idempotent: each step checks its result first and does nothing if it is
# already there. Facts behind each step: ../shared/PLATFORM.md.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

BINDGEN_VERSION=0.72.1

need_root() {
	if [ "$(id -u)" != 0 ]; then
		die "setup: installing packages needs root (run: sudo make setup)"
	fi
}

step "setup: Debian suites (bookworm-backports, trixie-backports for linux-source-7.3 only)"
src=/etc/apt/sources.list.d/kvm-rs.sources
if [ ! -f "$src" ]; then
	need_root
	cat > "$src" <<'SRC'
# Added by kvm-rs scripts/setup.sh.
# bookworm-backports: qemu-system-x86 10 (matches the image's qemu-utils).
# trixie-backports: only to download linux-source-7.3 (never add trixie main).
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports trixie-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
	rm -f /var/lib/kvm-rs-apt-updated
fi
if [ ! -f /var/lib/kvm-rs-apt-updated ]; then
	need_root
	apt-get update -q || die "setup: apt-get update failed"
	touch /var/lib/kvm-rs-apt-updated
fi

PKGS="build-essential flex bison bc libelf-dev libssl-dev cpio xz-utils kmod
rsync python3 busybox-static zstd file jq
rustc-web rust-web-src rust-web-clippy rustfmt-web libclang-22-dev clang-22 lld-22 llvm-22 linux-perf
python3-matplotlib python3-sphinx
bochs bochsbios vgabios isolinux syslinux-common xorriso"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	step "setup: apt-get install$missing"
	need_root
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing \
		|| die "setup: apt-get install failed for:$missing"
fi
if ! dpkg-query -W -f='${Status}' qemu-system-x86 2>/dev/null | grep -q "ok installed"; then
	step "setup: apt-get install -t bookworm-backports qemu-system-x86"
	need_root
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q -t bookworm-backports \
		qemu-system-x86 || die "setup: qemu-system-x86 from bookworm-backports failed"
fi

if ! "$CARGO_BIN/bindgen" --version 2>/dev/null | grep -q "$BINDGEN_VERSION"; then
	step "setup: cargo install bindgen-cli $BINDGEN_VERSION (about 2 min)"
	LIBCLANG_PATH=/usr/lib/llvm-22/lib cargo install bindgen-cli \
		--version "$BINDGEN_VERSION" --locked --root "$CARGO_HOME_DIR" \
		|| die "setup: cargo install bindgen-cli failed"
fi

step "setup: checking the toolchain"
/usr/bin/rustc --version | grep -q "1.96" || die "setup: /usr/bin/rustc is not 1.96 (rustc-web)"
[ -d "$RUST_LIB_SRC" ] || die "setup: $RUST_LIB_SRC missing (rust-web-src)"
"$CARGO_BIN/bindgen" --version
ok "setup: done"
