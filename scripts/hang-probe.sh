#!/usr/bin/env bash
# Where were the guest CPUs when a test hung?  Started by scripts/vm.sh
# (--machine amd) beside QEMU:
#
#   scripts/hang-probe.sh PID MONITOR_SOCKET TIMES TEST_LIMIT VM_LIMIT OUT [SYSTEM_MAP]
#
# Every 5 s, while PID lives: if the test that vm.sh's TIMES file shows
# running began more than TEST_LIMIT wall seconds ago (0: never), or VM_LIMIT wall
# seconds have passed, write to OUT the state of QEMU's threads (CPU ticks
# in 2 s, wait channel) and three samples, 2 s apart, of QEMU's "info
# registers -a" and each CPU's "info lapic" (asked on the QEMU monitor at
# MONITOR_SOCKET), each CPU's RIP resolved against SYSTEM_MAP (the L1
# kernel's own symbols; module and user addresses stay bare), then stop.
# A hang where the guest's own per-test timeout still fires never gets
# here: that is an L1 kernel that still runs its timers.  For a test past
# TEST_LIMIT the probe then stops the VM (SIGTERM to PID): nothing after it
# would run, and the VM's wall limit may be many minutes away.
set -uo pipefail
[ $# -ge 6 ] || { echo "usage: $0 PID SOCKET TIMES TEST_LIMIT VM_LIMIT OUT [SYSTEM_MAP]" >&2; exit 2; }
pid=$1 sock=$2 times=$3 test_limit=$4 vm_limit=$5 out=$6 map=${7:-}
start=$(date +%s)

sample() {
	python3 - "$sock" <<-'PY'
	import socket, sys, time
	s = socket.socket(socket.AF_UNIX)
	s.connect(sys.argv[1])
	def read_prompt():
	    # until the output ends at a prompt and nothing more comes for 0.5 s
	    # (a prompt can arrive in pieces; never send an empty line, whose
	    # extra prompt would end the next command's read early)
	    buf = b""
	    end = time.time() + 15
	    s.settimeout(0.5)
	    while time.time() < end:
	        try:
	            d = s.recv(65536)
	        except socket.timeout:
	            if buf.rstrip().endswith(b"(qemu)"):
	                break
	            continue
	        if not d:
	            break
	        buf += d
	    return buf.decode(errors="replace")
	def cmd(c):
	    s.sendall((c + "\n").encode())
	    return read_prompt()
	read_prompt()	# the banner
	print(cmd("info registers -a"))
	# each CPU's local APIC: an interrupt pending (IRR) that a CPU never
	# takes is one kind of hang, a CPU halted with nothing pending another
	for line in cmd("info cpus").splitlines():
	    line = line.strip().lstrip("*").strip()
	    if line.startswith("CPU #"):
	        i = line[5:].split(":")[0]
	        cmd("cpu " + i)
	        print("LAPIC of CPU#" + i)
	        print(cmd("info lapic"))
	PY
}

resolve() {	# RIP lines: "CPU#n RIP=<hex> <symbol+off | ->"
	awk -v map="$map" '
	BEGIN {
		n = 0
		if (map != "")
			while ((getline l < map) > 0) {
				split(l, f, " ")
				if (f[2] ~ /^[tTwW]$/) { addr[n] = f[1]; name[n] = f[3]; n++ }
			}
	}
	function sym(h,   lo, hi, mid, best) {
		h = sprintf("%016s", tolower(h)); gsub(/ /, "0", h)
		lo = 0; hi = n - 1; best = -1
		while (lo <= hi) {
			mid = int((lo + hi) / 2)
			if (addr[mid] <= h) { best = mid; lo = mid + 1 } else hi = mid - 1
		}
		if (best < 0 || substr(h, 1, 8) != "ffffffff") return "-"
		return name[best]
	}
	/^CPU#[0-9]+/ { cpu = $1 }
	/RIP=/ {
		match($0, /RIP=[0-9a-f]+/); rip = substr($0, RSTART + 4, RLENGTH - 4)
		print cpu, "RIP=" rip, sym(rip)
	}'
}

while kill -0 "$pid" 2>/dev/null; do
	sleep 5
	now=$(( $(date +%s) - start ))
	running=$(awk '$2 == "begin" {b[$1] = $3} $2 == "end" {delete b[$1]}
		END {for (t in b) print t, int(b[t])}' "$times" 2>/dev/null | head -1)
	why=""
	if [ "$test_limit" != 0 ] && [ -n "$running" ] && [ $(( now - ${running#* } )) -gt "$test_limit" ]; then
		why="test ${running% *} running for $(( now - ${running#* } )) s of wall time"
	elif [ "$now" -gt "$vm_limit" ]; then
		why="VM running for $now s of wall time${running:+, test ${running% *} running}"
	fi
	[ -n "$why" ] || continue
	{
		echo "# $why"
		# QEMU's own threads (the emulator's child of PID): state and CPU
		# ticks 2 s apart tell spinning vCPU threads from a deadlocked QEMU
		# (whose monitor would not answer either)
		qemu_pid=$(pgrep -P "$pid" | head -1)
		if [ -n "$qemu_pid" ]; then
			ticks() { for t in /proc/"$qemu_pid"/task/*; do
				echo "$(cat "$t/comm" 2>/dev/null)|$(sed 's/.*) //' "$t/stat" 2>/dev/null | awk '{print $1, $12 + $13}')|$(cat "$t/wchan" 2>/dev/null)"
			done; }
			a=$(ticks); sleep 2; b=$(ticks)
			echo "# QEMU threads (pid $qemu_pid): name, state, CPU ticks in 2 s, wait channel"
			paste -d'|' <(echo "$a") <(echo "$b") | awk -F'|' '{split($2, x, " "); split($5, y, " ");
				printf "QEMU-THREAD %-16s %s %5d %s\n", $1, y[1], y[2] - x[2], $6}'
		fi
		for i in 1 2 3; do
			regs=$(sample 2>&1 | tr -d '\r')
			echo "# sample $i"
			resolve <<< "$regs"
			# the monitor's readline echoes each command with escapes
			echo "$regs" | grep -v -E $'^\\(qemu\\)|^QEMU .*monitor|\e'
			sleep 2
		done
	} > "$out"
	# a test past its guest limit + 60 s: the guest's timers no longer kill
	# it, nothing after it will run; end the VM now, not at its wall limit
	case "$why" in test*) echo "# VM stopped by scripts/hang-probe.sh" >> "$out"; kill -TERM "$pid" ;; esac
	exit 0
done
