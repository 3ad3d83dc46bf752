#!/bin/sh
# Loom model of the fast page fault (tests/loom.rs): two vCPUs and a zapper.
# Separate target dir: --cfg loom changes every crate's build.
set -e
cd "$(dirname "$0")"
RUSTFLAGS="--cfg loom" \
    exec cargo test --release --target-dir target/loom --test loom "$@"
