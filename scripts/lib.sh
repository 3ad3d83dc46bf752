# Shared settings and helpers for kvm-rs scripts. Sourced, not run.
# shellcheck shell=bash

KVMRS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KVMRS_CACHE=${KVMRS_CACHE:-/var/cache/kvm-rs}
CARGO_HOME_DIR=${CARGO_HOME:-$HOME/.cargo}
CARGO_BIN=$CARGO_HOME_DIR/bin
RUSTC_KERNEL=/usr/bin/rustc
RUST_LIB_SRC=/usr/src/rustc-1.96.0/library
LIBCLANG_PATH=/usr/lib/llvm-22/lib
LLVM_PREFIX=/usr/lib/llvm-22/bin/
KVER=7.3
export LIBCLANG_PATH

step() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
ok() { printf '\033[32m==> %s\033[0m\n' "$*" >&2; }
die() { printf '\033[31mERROR: %s\033[0m\n' "$*" >&2; exit 1; }
