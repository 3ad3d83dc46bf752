#!/bin/sh
# Instructions per fault under callgrind (perf stat cannot count
# instructions on this machine: "<not supported> instructions").
# Runs examples/instr.rs with N1 and N2 faults and divides the difference
# in instructions executed (Ir) by N2 - N1, so setup cost cancels out.
set -e
cd "$(dirname "$0")"
cargo build --release --example instr 2>/dev/null
BIN=target/release/examples/instr
N1=1000
N2=21000
ir() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$BIN" "$@" 2>&1 |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
printf '%-6s %-11s %10s %10s\n' levels case fault floor
for level in 4 5; do
    for case in fixable spurious nonpresent; do
        set --
        for what in fault floor; do
            a=$(ir $level $case $what $N1)
            b=$(ir $level $case $what $N2)
            set -- "$@" "$(echo "scale=1; ($b - $a) / ($N2 - $N1)" | bc)"
        done
        printf '%-6s %-11s %10s %10s\n' $level $case "$1" "$2"
    done
done
