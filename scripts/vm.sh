#!/usr/bin/env bash
# Run KVM tests in an emulated machine booting the reference kernel with the
# kvm modules under test: AMD SVM + NPT under QEMU TCG (--machine amd, the
# default) or Intel VMX + EPT under Bochs (--machine intel).  Both machines
# boot the same bzImage and initramfs, run the same test lists and apply the
# same verdict rules.
#
#   scripts/vm.sh [options]
#
# Options:
#   --machine amd|intel amd: QEMU TCG, -cpu EPYC,+svm,+npt, kvm-amd.ko (default);
#                       intel: Bochs 2.7, corei7_haswell_4770 (VMX, EPT, EPT
#                       A/D, PML), kvm-intel.ko, one CPU, emulated time
#                       (clock sync=none: guest seconds = instructions / ips)
#   --kdir DIR          kernel build tree (default: scripts/kernel.sh --print-dir);
#                       boots DIR/arch/x86/boot/bzImage
#   --modules DIR|stock directory with kvm.ko kvm-amd.ko (kvm-intel.ko);
#                       default: build/<KDIR's release>/arch/x86/kvm (make's
#                       output for that tree), else build/current/arch/x86/kvm,
#                       else the tree's stock modules (KDIR/arch/x86/kvm, noted)
#   --kvm-params "..."  kvm.ko parameters, e.g. "tdp_mmu=N tdp_fast_pf=c"
#   --amd-params "..."  kvm-amd.ko parameters (--machine amd)
#   --intel-params "..." kvm-intel.ko parameters (--machine intel), e.g.
#                       "ept=1 eptad=0 pml=0" (the seed's configuration)
#   --tests ARG         a test list file ("<name> <guest command>" per line),
#                       or names / shell globs picked from --suite (space or
#                       comma separated); default: all of --suite
#   --suite FILE        default list (tools/vm/suite.list; tools/vm/intel.list
#                       with --machine intel; for a 6.12 kernel
#                       tools/vm/suite-6.12.list and intel-6.12.list)
#   --cmd "COMMAND"     run one ad-hoc guest command as test "cmd" (repeatable,
#                       "name=COMMAND" names it)
#   --perf              run every test under kvmrs-perf-count (perf record
#                       -e kvmmmu:fast_page_fault, counts printed per test)
#   --timeout S         wall-clock limit for the whole VM (default: 900 amd,
#                       1800 intel); a hung guest is killed and its running
#                       test is TIMEOUT
#   --test-timeout S    per-test limit inside the guest (guest seconds, 600);
#                       (amd) a test still running 60 s of wall time past it:
#                       every CPU's registers from the QEMU monitor into the
#                       log's .cpus.txt (scripts/hang-probe.sh), VM stopped
#   --icount            (amd) deterministic mode for benchmarks: -icount
#                       shift=0,sleep=off -seed 1, fixed RTC, -smp 1
#   --smp N             guest CPUs (default 2 amd; 1 with --icount; intel: 1 only)
#   --tcg MODE          (amd) QEMU TCG threading: multi (default: MTTCG, one
#                       host thread per vCPU) or single (one host thread runs
#                       the vCPUs round-robin; always with --icount)
#   --mem SIZE          guest memory (default 2G; M or G)
#   --log PATH          serial log (default build/vm/<time>.log)
#   --json PATH         machine-readable result (default: the log path with
#                       .json instead of .log): one JSON object with the run's
#                       settings, verdict, kernel reports and per-test results
#   --quiet             do not echo the guest console, progress lines only
#   --verbose           echo the whole guest console
#
# Environment: BOCHS=<binary> (default: bochs on PATH) for --machine intel.
#
# Output: progress lines, a PASS/FAIL/SKIP/TIMEOUT table with wall and guest
# times, the log path.  Exit status 0 only if every test passed or skipped,
# the guest finished (KVMRS-DONE) and the log has no kernel splat.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

kdir="" moddir="" kvm_params="" amd_params="" intel_params="" tests_arg="" log=""
suite=""
timeout="" test_timeout=600 icount=0 smp="" mem="" perf=0 verbose=0 quiet=0
tcg="" json="" machine=amd
cmds=()
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
	case "$1" in
	--kdir) kdir=$2; shift 2 ;;
	--modules) moddir=$2; shift 2 ;;
	--kvm-params|--params) kvm_params=$2; shift 2 ;;
	--amd-params) amd_params=$2; shift 2 ;;
	--intel-params) intel_params=$2; shift 2 ;;
	--machine) machine=$2; shift 2 ;;
	--tests) tests_arg=$2; shift 2 ;;
	--suite) suite=$2; shift 2 ;;
	--cmd) cmds+=("$2"); shift 2 ;;
	--perf) perf=1; shift ;;
	--timeout) timeout=$2; shift 2 ;;
	--test-timeout) test_timeout=$2; shift 2 ;;
	--icount) icount=1; shift ;;
	--smp) smp=$2; shift 2 ;;
	--mem) mem=$2; shift 2 ;;
	--tcg) tcg=$2; shift 2 ;;
	--json) json=$2; shift 2 ;;
	--log) log=$2; shift 2 ;;
	--verbose) verbose=1; shift ;;
	--quiet) quiet=1; shift ;;
	-h|--help) usage 0 ;;
	*) echo "vm: unknown argument '$1'" >&2; usage 1 ;;
	esac
done
case "$machine" in amd|intel) ;; *) die "vm: --machine wants 'amd' or 'intel', not '$machine'" ;; esac
if [ "$machine" = intel ]; then
	# Bochs: one CPU, its own clock; the QEMU options would be silently
	# meaningless, so they are refused.  (Debian's Bochs has SMP, but its
	# debugger build then runs each CPU 5 instructions at a time: 2 CPUs
	# take about twice the wall time.)
	[ -z "$tcg" ] && [ "$icount" = 0 ] || die "vm: --tcg and --icount are QEMU options; --machine intel (Bochs) always runs one CPU in emulated time"
	[ -z "$smp" ] || [ "$smp" = 1 ] || die "vm: --machine intel runs one CPU: --smp $smp is not supported"
	[ -z "$amd_params" ] || die "vm: --amd-params with --machine intel: use --intel-params"
	smp=1 tcg=bochs
	: "${timeout:=1800}" "${mem:=2G}"
	vendor=kvm-intel vendor_params=$intel_params
else
	[ -z "$intel_params" ] || die "vm: --intel-params with --machine amd: use --amd-params (or --machine intel)"
	if [ -z "$tcg" ]; then if [ "$icount" = 1 ]; then tcg=single; else tcg=multi; fi; fi
	case "$tcg" in single|multi) ;; *) die "vm: --tcg wants 'single' or 'multi', not '$tcg'" ;; esac
	if [ -z "$smp" ]; then if [ "$icount" = 1 ]; then smp=1; else smp=2; fi; fi
	[ "$icount" = 1 ] && [ "$tcg" = multi ] && die "vm: --icount runs single-threaded TCG (QEMU refuses MTTCG with icount)"
	[ "$icount" = 1 ] && [ "$smp" != 1 ] && die "vm: --icount needs --smp 1 (one vCPU thread, deterministic)"
	: "${timeout:=900}" "${mem:=2G}"
	vendor=kvm-amd vendor_params=$amd_params
fi
[[ "$timeout" =~ ^[0-9]+$ ]] || die "vm: --timeout wants seconds"
[[ "$test_timeout" =~ ^[0-9]+$ ]] || die "vm: --test-timeout wants seconds"
[[ "$mem" =~ ^([0-9]{1,6})([MmGg])$ ]] || die "vm: --mem wants a size in M or G, e.g. 1024M or 2G, not '$mem'"
mem_mb=$((10#${BASH_REMATCH[1]}))
case "${BASH_REMATCH[2]}" in [Gg]) mem_mb=$((mem_mb * 1024)) ;; esac
[ "$mem_mb" -ge 256 ] || die "vm: --mem $mem is too small (256M at least)"

if [ "$machine" = intel ]; then
	bochs_bin=${BOCHS:-bochs}
	command -v "$bochs_bin" >/dev/null || die "vm: $bochs_bin missing (Debian package 'bochs'; run 'make setup')"
	for f in /usr/share/bochs/BIOS-bochs-latest:bochsbios /usr/share/vgabios/vgabios.bin:vgabios \
		/usr/lib/ISOLINUX/isolinux.bin:isolinux /usr/lib/syslinux/modules/bios/ldlinux.c32:syslinux-common; do
		[ -f "${f%%:*}" ] || die "vm: ${f%%:*} missing (Debian package '${f##*:}'; run 'make setup')"
	done
	command -v xorriso >/dev/null || die "vm: xorriso missing (Debian package 'xorriso'; run 'make setup')"
else
	command -v qemu-system-x86_64 >/dev/null || die "vm: qemu-system-x86_64 missing (run 'make setup')"
fi
[ -x /bin/busybox ] && file -b /bin/busybox | grep -q static || die "vm: a static /bin/busybox is needed (busybox-static)"

# ---- kernel and modules ---------------------------------------------------
[ -n "$kdir" ] || kdir=$("$KVMRS_ROOT/scripts/kernel.sh" --print-dir)
bzimage=$kdir/arch/x86/boot/bzImage
[ -f "$bzimage" ] || die "vm: no kernel image $bzimage (build it: scripts/kernel.sh)"
[ -f "$kdir/include/config/kernel.release" ] || die "vm: $kdir is not a built kernel tree"
release=$(cat "$kdir/include/config/kernel.release")
# The series of the kernel booted picks the selftests (its own stock tests,
# scripts/selftests.sh) and the default list: tools/vm/{suite,intel}.list
# for 7.3, tools/vm/{suite,intel}-<series>.list for another series.
series=$(release_series "$release")
supported_kver "$series" || die "vm: $kdir is Linux $release, not a supported series ($SUPPORTED_KVERS)"
export KVER=$series
if [ -z "$suite" ]; then
	sfx=""; [ "$series" = 7.3 ] || sfx=-$series
	if [ "$machine" = intel ]; then suite=$KVMRS_ROOT/tools/vm/intel$sfx.list
	else suite=$KVMRS_ROOT/tools/vm/suite$sfx.list; fi
fi

mods_label=""
if [ -z "$moddir" ]; then
	# the default build for this kernel (make / make KVER=...), whichever
	# series build/current points at
	if [ -f "$KVMRS_ROOT/build/$release/arch/x86/kvm/kvm.ko" ]; then
		moddir=$KVMRS_ROOT/build/$release/arch/x86/kvm; mods_label=kvm-rs
	elif [ -f "$KVMRS_ROOT/build/current/arch/x86/kvm/kvm.ko" ]; then
		moddir=$KVMRS_ROOT/build/current/arch/x86/kvm; mods_label=kvm-rs
	else
		moddir=$kdir/arch/x86/kvm; mods_label=stock
		echo "vm: note: $KVMRS_ROOT/build/$release/arch/x86/kvm/kvm.ko not built: using the stock modules of $kdir" >&2
	fi
elif [ "$moddir" = stock ]; then
	moddir=$kdir/arch/x86/kvm; mods_label=stock
else
	mods_label=$moddir
fi
moddir=$(cd "$moddir" 2>/dev/null && pwd) || die "vm: module directory $moddir does not exist"
for m in kvm $vendor; do
	[ -f "$moddir/$m.ko" ] || die "vm: $moddir/$m.ko missing"
	vm_magic=$(modinfo -F vermagic "$moddir/$m.ko" | awk '{print $1}')
	[ "$vm_magic" = "$release" ] || die "vm: $moddir/$m.ko is for kernel '$vm_magic', the VM boots '$release' ($kdir)"
done

# ---- test list ------------------------------------------------------------
work=$(mktemp -d /tmp/kvmrs-vm.XXXXXX)
qpid=""
cleanup() {
	if [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null; then kill "$qpid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

list=$work/tests.list
strip_list() { grep -v -E '^[[:space:]]*(#|$)' "$1" | sed -E 's/^[[:space:]]+//' || true; }
if [ -n "$tests_arg" ] && [ -f "$tests_arg" ]; then
	strip_list "$tests_arg" > "$list"
elif [ -n "$tests_arg" ]; then
	[ -f "$suite" ] || die "vm: suite $suite missing"
	: > "$list"
	for pat in ${tests_arg//,/ }; do
		found=0
		while read -r name rest; do
			# shellcheck disable=SC2254 # glob match on purpose
			case "$name" in $pat) echo "$name $rest" >> "$list"; found=1 ;; esac
		done < <(strip_list "$suite")
		[ "$found" = 1 ] || die "vm: no test '$pat' in $suite (names: $(strip_list "$suite" | awk '{print $1}' | tr '\n' ' '))"
	done
elif [ ${#cmds[@]} -eq 0 ]; then
	[ -f "$suite" ] || die "vm: suite $suite missing"
	strip_list "$suite" > "$list"
else
	: > "$list"
fi
i=0
for c in "${cmds[@]}"; do
	i=$((i + 1))
	if [[ "$c" =~ ^([A-Za-z0-9_.+-]+)=(.*)$ ]]; then echo "${BASH_REMATCH[1]} ${BASH_REMATCH[2]}" >> "$list"
	else echo "cmd$([ $i -gt 1 ] && echo $i) $c" >> "$list"; fi
done
[ -s "$list" ] || die "vm: no tests selected"
if [ "$perf" = 1 ]; then
	awk '{ n = $1; $1 = ""; print n " kvmrs-perf-count" $0 }' "$list" > "$list.perf" && mv "$list.perf" "$list"
fi
dups=$(awk '{print $1}' "$list" | sort | uniq -d | tr '\n' ' ')
[ -z "$dups" ] || die "vm: duplicate test names: $dups"
mapfile -t test_names < <(awk '{print $1}' "$list")

# ---- initramfs --------------------------------------------------------------
# Base part (cached): busybox, bash, perf + libraries, selftests, tools/vm.
# Per-run part: modules, load scripts, env, test list.  The kernel unpacks
# concatenated newc archives; both stay uncompressed (decompressing tens of
# MB under TCG costs seconds, the extra size costs nothing).
stdir=$("$KVMRS_ROOT/scripts/selftests.sh" | tail -1) || die "vm: building the selftests failed"
[ -d "$stdir" ] || die "vm: selftests dir $stdir missing"

perf_bin=""
for p in /usr/bin/perf_* /usr/lib/linux-tools*/perf /usr/bin/perf; do
	[ -f "$p" ] && file -b "$p" | grep -q ELF && { perf_bin=$p; break; }
done
[ -n "$perf_bin" ] || echo "vm: note: no perf ELF binary found (linux-perf): kvmrs-perf-count will not work" >&2

base_key=$( { echo "$stdir"; ls -l --time-style=+%s "$stdir" /bin/busybox /bin/bash ${perf_bin:+"$perf_bin"};
	cat "$KVMRS_ROOT"/tools/vm/init "$KVMRS_ROOT"/tools/vm/kvmrs-*; cat "$0"; } | sha256sum | cut -c1-12)
base_cpio=$KVMRS_CACHE/vm/base-$base_key.cpio

copy_with_libs() {	# <binary> <root>: the binary at its path plus ldd's libraries
	local bin=$1 root=$2 lib
	mkdir -p "$root$(dirname "$bin")"
	cp -L "$bin" "$root$bin"
	for lib in $(ldd "$bin" 2>/dev/null | awk '/=> \//{print $3} /^[[:space:]]*\/[^ ]*ld-linux/{print $1}'); do
		[ -e "$root$lib" ] && continue
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
}

if [ ! -f "$base_cpio" ]; then
	step "vm: building the base initramfs $base_cpio"
	root=$work/base
	mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,lib64,proc,sys,dev,tmp,run,etc,kvmrs/bin,kvmrs/tools}
	cp /bin/busybox "$root/bin/busybox"
	ln -s busybox "$root/bin/sh"
	ln -s ../../bin/busybox "$root/usr/bin/env"
	copy_with_libs /bin/bash "$root"
	if [ -n "$perf_bin" ]; then
		copy_with_libs "$perf_bin" "$root"
		[ "$perf_bin" = /usr/bin/perf ] || ln -sf "$perf_bin" "$root/usr/bin/perf"
	fi
	# merged-/usr hosts: ldd says /lib/x86_64-linux-gnu; make /usr/lib see it too
	if [ -d "$root/lib/x86_64-linux-gnu" ] && [ ! -e "$root/usr/lib/x86_64-linux-gnu" ]; then
		mkdir -p "$root/usr/lib"; ln -s ../../lib/x86_64-linux-gnu "$root/usr/lib/x86_64-linux-gnu"
	fi
	cp "$stdir"/* "$root/kvmrs/bin/"
	strip --strip-debug "$root"/kvmrs/bin/*_test* 2>/dev/null || true
	cp "$KVMRS_ROOT"/tools/vm/init "$root/init"
	cp "$KVMRS_ROOT"/tools/vm/kvmrs-* "$root/kvmrs/tools/"
	chmod +x "$root/init" "$root"/kvmrs/tools/*
	echo "root:x:0:0:root:/tmp:/bin/sh" > "$root/etc/passwd"
	echo "root:x:0:" > "$root/etc/group"
	mkdir -p "$KVMRS_CACHE/vm"
	# other runs (other checkouts) may be using older bases right now:
	# only those unused for two hours go
	find "$KVMRS_CACHE/vm" -name 'base-*.cpio' -mmin +120 -delete 2>/dev/null || true
	( cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 ) > "$base_cpio.tmp.$$" \
		|| die "vm: cpio failed"
	mv "$base_cpio.tmp.$$" "$base_cpio"
	rm -rf "$root"
	ok "vm: base initramfs $(du -h "$base_cpio" | cut -f1)"
fi

touch "$base_cpio"	# in use: see the clean-up above
run=$work/run
mkdir -p "$run/kvmrs/modules" "$run/kvmrs/scripts"
for m in kvm kvm-amd kvm-intel; do [ -f "$moddir/$m.ko" ] && cp "$moddir/$m.ko" "$run/kvmrs/modules/"; done
# Modules kvm.ko depends on (irqbypass when CONFIG_IRQ_BYPASS_MANAGER=m):
# taken from the tree, loaded by kvmrs-load before kvm.ko (insmod does no
# dependency resolution).
mkdir -p "$run/kvmrs/deps"
for dep in $(modinfo -F depends "$moddir/kvm.ko" "$moddir/$vendor.ko" | tr ',' '\n' | sort -u); do
	case "$dep" in kvm|kvm-amd|kvm_amd|kvm-intel|kvm_intel|"") continue ;; esac
	f=$(find -H "$kdir" -name "$dep.ko" -o -name "${dep//_/-}.ko" | head -1)
	[ -n "$f" ] || die "vm: kvm.ko needs module '$dep', not found in $kdir"
	cp "$f" "$run/kvmrs/deps/"
	echo "$(basename "$f")" >> "$run/kvmrs/deps/order"
done
# load.sh wants both vendor modules in the directory; only $vendor runs
for m in kvm-amd kvm-intel; do
	[ -f "$run/kvmrs/modules/$m.ko" ] || cp "$run/kvmrs/modules/$vendor.ko" "$run/kvmrs/modules/$m.ko"
done
if [ -f "$KVMRS_ROOT/scripts/load.sh" ]; then
	cp "$KVMRS_ROOT/scripts/load.sh" "$KVMRS_ROOT/scripts/lib.sh" "$run/kvmrs/scripts/"
fi
cp "$list" "$run/kvmrs/tests.list"
{
	printf 'KVM_PARAMS=%q\n' "$kvm_params"
	printf 'VENDOR_PARAMS=%q\n' "$vendor_params"	# kvm-amd's or kvm-intel's
	printf 'TEST_TIMEOUT=%q\n' "$test_timeout"
} > "$run/kvmrs/env"
( cd "$run" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 ) > "$work/run.cpio"
cat "$base_cpio" "$work/run.cpio" > "$work/initrd.cpio"

# ---- boot -------------------------------------------------------------------
if [ -z "$log" ]; then
	mkdir -p "$KVMRS_ROOT/build/vm"
	log=$KVMRS_ROOT/build/vm/$(date +%Y%m%d-%H%M%S)-$$.log
fi
mkdir -p "$(dirname "$log")"
: > "$log"
cmdline="panic=-1 oops=panic rdinit=/init"
# oops=panic: an oops in a test would otherwise leave a half-dead guest;
# the splat is in the log either way.
if [ "$machine" = amd ] && [ "$series" = 6.12 ] && [ "$mem_mb" -le 2816 ]; then
	# 6.12's access_tracking_perf_test reads /sys/kernel/mm/page_idle/bitmap
	# 8 bytes at a time and asserts 8; the kernel returns 0 for the last
	# 64-page chunk when max_pfn is not a multiple of 64, and QEMU's e820
	# ends usable RAM 128 KiB below the top (pfn 0x7ffe0 with 2G): the test
	# fails there with the stock modules too. mem= 1 MiB below the top
	# makes max_pfn a multiple of 256 (below 2.75G all RAM is under the
	# 4G hole, so mem= cuts only that MiB).
	cmdline="$cmdline mem=$((mem_mb - 1))M"
fi
if [ "$machine" = amd ]; then
	qemu=(qemu-system-x86_64 -accel "tcg,thread=$tcg" -cpu EPYC,+svm,+npt -smp "$smp" -m "$mem"
		-nographic -no-reboot -nic none -name kvmrs,debug-threads=on
		-kernel "$bzimage" -initrd "$work/initrd.cpio"
		-append "console=ttyS0 $cmdline"
		-monitor "unix:$work/monitor.sock,server=on,wait=off")
	emu_out=$log	# QEMU's -nographic console is its stdout
	[ "$icount" = 1 ] && qemu+=(-icount shift=0,sleep=off -seed 1 -rtc base=2026-01-01T00:00:00,clock=vm)
else
	# Bochs has no direct kernel boot for a 64-bit bzImage: an isolinux
	# ISO carries the kernel and the initramfs (recipe: PLATFORM.md).
	# clearcpuid=ht: every Intel model of Bochs 2.7 reports 8 cores in
	# CPUID leaf 4 but 1 logical CPU in leaf 1 EBX, with HTT set and no
	# valid leaf 0xB for one CPU, so parse_legacy() WARNs at every boot.
	# Clearing HT (used there only; KVM never passes HTT to guests) takes
	# the same topology without the report, so the verdict stays "no
	# kernel report at all".  It taints the kernel 'S' (TESTING ONLY line).
	cmdline="$cmdline clearcpuid=ht"
	iso=$work/iso
	mkdir -p "$iso/isolinux"
	cp /usr/lib/ISOLINUX/isolinux.bin /usr/lib/syslinux/modules/bios/ldlinux.c32 "$iso/isolinux/"
	cp "$bzimage" "$iso/isolinux/bzImage"
	mv "$work/initrd.cpio" "$iso/isolinux/initrd.img"
	cat > "$iso/isolinux/isolinux.cfg" <<-CFG
	SERIAL 0 115200
	DEFAULT kvmrs
	PROMPT 0
	TIMEOUT 0
	LABEL kvmrs
	  KERNEL bzImage
	  APPEND initrd=initrd.img console=ttyS0,115200 $cmdline
	CFG
	xorriso -as mkisofs -quiet -o "$work/boot.iso" -b isolinux/isolinux.bin -c isolinux/boot.cat \
		-no-emul-boot -boot-load-size 4 -boot-info-table "$iso" 2> "$work/xorriso.err" \
		|| die "vm: xorriso could not make the boot ISO: $(tail -3 "$work/xorriso.err" | tr '\n' ' ')"
	rm -rf "$iso"
	bochs_log=${log%.log}.bochs.log
	# cpu: the Haswell model has VMX with EPT, EPT A/D and PML; Skylake-X
	# does not boot (PLATFORM.md).  clock sync=none: the guest's time is
	# instructions / ips, independent of the host's load.  The debugger
	# build stops before the first instruction: "c" runs, "quit" ends.
	# sound: without a sound card on the host, the default ALSA driver
	# aborts Bochs at start ("buffer overflow detected").  error: the
	# emulated CPU logs every unknown MSR read (KVM reads DEBUGCTL, 0x1d9,
	# before each VM entry) and every EPT violation exit: 16 MB per check
	# boot, 220 MB per bench boot; the other devices' errors are kept.
	cat > "$work/bochsrc" <<-RC
	megs: $mem_mb
	cpu: model=corei7_haswell_4770, count=1, ips=200000000, reset_on_triple_fault=0
	romimage: file=/usr/share/bochs/BIOS-bochs-latest
	vgaromimage: file=/usr/share/vgabios/vgabios.bin
	ata0-master: type=cdrom, path=$work/boot.iso, status=inserted
	boot: cdrom
	com1: enabled=1, mode=file, dev=$log
	display_library: rfb, options="timeout=0"
	clock: sync=none, time0=local
	log: $bochs_log
	info: action=ignore
	error: action=report, cpu0=ignore
	panic: action=fatal
	sound: waveoutdrv=dummy, waveindrv=dummy, midioutdrv=dummy
	speaker: enabled=0
	RC
	printf 'c\nquit\n' > "$work/bochs.cmds"
	qemu=("$bochs_bin" -q -f "$work/bochsrc" -rc "$work/bochs.cmds")
	emu_out=${log%.log}.bochs.out	# the serial console goes to $log (com1)
fi

step "vm: machine $machine, kernel $release, modules $mods_label ($moddir), kvm params '${kvm_params}' $machine params '${vendor_params}'"
step "vm: ${#test_names[@]} tests, smp=$smp tcg=$tcg mem=$mem icount=$icount timeout=${timeout}s, log $log"
t0=$(date +%s.%N)
timeout --signal=KILL "$timeout" "${qemu[@]}" < /dev/null > "$emu_out" 2>&1 &
qpid=$!
hang_probe=""
if [ "$machine" = amd ]; then
	# A test that outlives its guest limit by 60 s of wall time, or a VM
	# 30 s short of its wall limit: the guest's own timeout did not fire,
	# so ask QEMU where every guest CPU is (three samples, 2 s apart) before
	# the VM is killed.  Printed by the verdict below.
	# With --icount guest time runs slower than wall time: the VM limit only.
	hang_dump=${log%.log}.cpus.txt
	rm -f "$hang_dump"
	"$KVMRS_ROOT/scripts/hang-probe.sh" "$qpid" "$work/monitor.sock" "$work/times" \
		"$([ "$icount" = 1 ] && echo 0 || echo $((test_timeout + 60)))" "$((timeout - 30))" "$hang_dump" "$kdir/System.map" &
	hang_probe=$!
fi

times=$work/times
: > "$times"
elapsed() { awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
# Live progress: follow the log until QEMU exits.
tail -n +1 -F --pid="$qpid" "$log" 2>/dev/null | while IFS= read -r line; do
	line=${line//$'\r'/}
	case "$line" in
	*KVMRS-BOOTED*) echo "[$(elapsed)s] booted: ${line#*KVMRS-BOOTED }" ;;
	*KVMRS-PARAMS*) echo "[$(elapsed)s] ${line#*KVMRS-}" ;;
	*KVMRS-LOAD-FAILED*) echo "[$(elapsed)s] module load FAILED" ;;
	*KVMRS-TEST-BEGIN*)
		set -- ${line#*KVMRS-TEST-BEGIN }
		echo "$1 begin $(elapsed)" >> "$times"
		echo "[$(elapsed)s] start $1" ;;
	*KVMRS-TEST-END*)
		set -- ${line#*KVMRS-TEST-END }
		echo "$1 end $(elapsed)" >> "$times"
		echo "[$(elapsed)s] end   $1 $2" ;;
	*KVMRS-TEST-STUCK*) echo "[$(elapsed)s] stuck ${line#*KVMRS-TEST-STUCK }: 5 s before its limit (sysrq l and w output follows where the kernel has sysrq)" ;;
	*KVMRS-PERF*) echo "[$(elapsed)s]       ${line#*KVMRS-}" ;;
	*KVMRS-DONE*) echo "[$(elapsed)s] guest done" ;;
	*)
		if [ "$verbose" = 1 ]; then echo "  | $line"
		elif [ "$quiet" = 0 ]; then
			case "$line" in
			*"not ok"*|*"==== Test Assertion Failure"*|*WARNING:*|*BUG:*|*Oops*|*"Call Trace:"*|*"Kernel panic"*|*KASAN*|*UBSAN*|*"Iteration 2 dirty memory time"*|*"# Totals"*|*kvmrs-load:*|*"load: "*)
				echo "  | $line" ;;
			esac
		fi ;;
	esac
done || true
set +e
wait "$qpid"; qrc=$?
[ -z "$hang_probe" ] || { kill "$hang_probe" 2>/dev/null; wait "$hang_probe" 2>/dev/null; }
set -e
qpid=""
wall=$(elapsed)

# ---- verdict ----------------------------------------------------------------
timed_out=0 probe_stopped=0
if [ "$qrc" = 137 ] || [ "$qrc" = 124 ]; then timed_out=1; fi
if [ -n "${hang_dump:-}" ] && grep -q '^# VM stopped by' "$hang_dump" 2>/dev/null; then
	timed_out=1 probe_stopped=1
fi
tr -d '\r' < "$log" > "$work/log"
done_seen=0; grep -q 'KVMRS-DONE' "$work/log" && done_seen=1
splat_re='WARNING:|BUG:|Oops|general protection|lockdep is turned off|DEBUG_LOCKS_WARN_ON|possible recursive locking|possible circular locking|inconsistent lock state|suspicious RCU usage|RCU stall|rcu_.*detected stall|detected stalls on CPU|KASAN:|UBSAN:|Call Trace:|[Kk]ernel panic'
# The guest echoes each test's command ("+ <command>", which may itself
# contain such words) and its markers; kernel console output is not line-
# synchronized with them and can land inside such a line (Bochs's UART runs
# at the emulated 115200 baud, so userspace lines are still being sent when
# the kernel writes).  So a "+ " line is scanned after its longest prefix
# that matches a command echo, and a marker line after its marker word and
# test name: a report written into either is still found.
splats=$(awk -v re="$splat_re" '
	FNR == NR {	# the test list: "<name> <command>"
		echo[++n] = "+ " substr($0, length($1) + 1); next
	}
	{
		line = $0; rest = line
		if (substr(line, 1, 2) == "+ ") {
			best = 0
			for (i = 1; i <= n; i++) {
				k = 0; m = length(echo[i]) < length(line) ? length(echo[i]) : length(line)
				while (k < m && substr(line, k + 1, 1) == substr(echo[i], k + 1, 1)) k++
				if (k > best) best = k
			}
			rest = substr(line, best + 1)
		} else if (match(line, /KVMRS-[A-Z-]+( [A-Za-z0-9_.+-]+)?/)) {
			rest = substr(line, 1, RSTART - 1) substr(line, RSTART + RLENGTH)
		}
		if (rest ~ re) print FNR ":" line
	}' "$list" "$work/log" | head -20 || true)

printf '\n%-26s %-8s %9s %9s  %s\n' TEST RESULT "WALL(s)" "GUEST(s)" NOTE
failed=0 npass=0 nskip=0 nfail=0 rc=""
: > "$work/results.tsv"
hard=0	# a failure other than tests exiting non-zero
for name in "${test_names[@]}"; do
	endl=$(grep -m1 "KVMRS-TEST-END $name rc=" "$work/log" || true)
	begl=$(grep -m1 "KVMRS-TEST-BEGIN $name guest_time=" "$work/log" || true)
	wb=$(awk -v n="$name" '$1 == n && $2 == "begin" {print $3; exit}' "$times")
	we=$(awk -v n="$name" '$1 == n && $2 == "end" {print $3; exit}' "$times")
	w="-"; [ -n "$wb" ] && [ -n "$we" ] && w=$(awk -v a="$wb" -v b="$we" 'BEGIN{printf "%.1f", b-a}')
	g="-"; note=""
	if [ -n "$endl" ]; then
		rc=$(sed -E 's/.*rc=([0-9]+).*/\1/' <<< "$endl")
		gb=$(sed -E 's/.*guest_time=([0-9.]+).*/\1/' <<< "$begl")
		ge=$(sed -E 's/.*guest_time=([0-9.]+).*/\1/' <<< "$endl")
		g=$(awk -v a="$gb" -v b="$ge" 'BEGIN{printf "%.1f", b-a}')
		case "$rc" in
		0) res=PASS ;;
		4) res=SKIP ;;
		137) res=TIMEOUT; note="killed after ${test_timeout}s guest time (or OOM)"; failed=1 ;;
		*) res=FAIL; note="rc=$rc"; failed=1 ;;
		esac
		# per-test perf counts, if any
		p=$(awk -v b="KVMRS-TEST-BEGIN $name " -v e="KVMRS-TEST-END $name " \
			'index($0, b) {on=1} on && /KVMRS-PERF/ {sub(/.*KVMRS-PERF /, ""); print} index($0, e) {on=0}' "$work/log" | tail -1)
		[ -n "$p" ] && note="$note perf: $p"
	elif [ -n "$begl" ]; then
		if [ "$probe_stopped" = 1 ]; then res=TIMEOUT; note="guest stuck: no end ${test_timeout}s + 60s after its start; VM stopped"
		elif [ "$timed_out" = 1 ]; then res=TIMEOUT; note="VM killed after ${timeout}s wall"
		else res=CRASH; note="guest died during the test"; fi
		failed=1
	else
		res=NOT-RUN; failed=1
	fi
	printf '%-26s %-8s %9s %9s  %s\n' "$name" "$res" "$w" "$g" "$note"
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$res" "$w" "$g" "${rc:-}" "$note" >> "$work/results.tsv"
	rc=""
	case "$res" in
	PASS) npass=$((npass + 1)) ;;
	SKIP) nskip=$((nskip + 1)) ;;
	FAIL) nfail=$((nfail + 1)) ;;
	*) nfail=$((nfail + 1)); hard=1 ;;
	esac
done
echo
echo "vm: total wall time ${wall}s; guest log: $log"
status=0
if grep -q KVMRS-LOAD-FAILED "$work/log"; then
	echo "vm: FAILED: the modules did not load (see the log)" >&2; status=1
fi
# The parameters asked for must be the ones read back from sysfs after the
# first load (KVMRS-PARAMS): e.g. kvm_intel eptad=0 really N.
first_params=$(grep -m1 -o 'KVMRS-PARAMS .*' "$work/log" || true)
if [ -n "$first_params" ]; then
	yn() { case "$1" in 1|y|Y) echo Y ;; 0|n|N) echo N ;; *) echo "$1" ;; esac; }
	for kv in $kvm_params $vendor_params; do
		k=${kv%%=*} v=${kv#*=}
		got=$(tr ' ' '\n' <<< "$first_params" | sed -n "s/^$k=//p" | head -1)
		[ -n "$got" ] || continue	# not a parameter KVMRS-PARAMS shows
		if [ "$(yn "$got")" != "$(yn "$v")" ]; then
			echo "vm: FAILED: asked for $k=$v, the guest's sysfs says $k=$got" >&2; status=1
		fi
	done
fi
if [ -n "${hang_dump:-}" ] && [ -s "$hang_dump" ]; then
	echo "vm: a test outlived its limits; where the guest CPUs were ($hang_dump):" >&2
	grep -E '^(# |CPU#[0-9]+ RIP=|QEMU-THREAD)' "$hang_dump" | head -16 | sed 's/^/  /' >&2
fi
if [ "$probe_stopped" = 1 ]; then
	echo "vm: FAILED: the guest hung: a test ran ${test_timeout}s + 60s of wall time and its guest timeout did not end it; VM stopped" >&2; status=1
elif [ "$timed_out" = 1 ]; then
	echo "vm: FAILED: the guest hung: killed after ${timeout}s" >&2; status=1
elif [ "$done_seen" = 0 ]; then
	if [ "$machine" = intel ]; then
		echo "vm: FAILED: the guest stopped without KVMRS-DONE (bochs rc=$qrc; panic? Bochs's log: $bochs_log)" >&2
		grep -E '^[0-9]+[ep]\[' "$emu_out" 2>/dev/null | tail -3 | sed 's/^/  /' >&2
	else
		echo "vm: FAILED: the guest stopped without KVMRS-DONE (qemu rc=$qrc; panic?)" >&2
	fi
	status=1
fi
if [ -n "$splats" ]; then
	echo "vm: FAILED: kernel splat in the guest log:" >&2
	echo "$splats" | sed 's/^/  /' >&2
	status=1
fi
[ "$status" = 1 ] && hard=1	# no load, hang, no KVMRS-DONE or a kernel report
[ "$failed" = 1 ] && status=1
echo "vm: $npass passed, $nfail failed, $nskip skipped"

# The machine-readable result, for check.sh, bench.sh and the
# flake-rate measurements (scripts/flake-rate.sh).
[ -n "$json" ] || json=${log%.log}.json
[ "$json" != "$log" ] || json=$log.json
printf '%s\n' "$splats" > "$work/splats"
KVMRS_J_STATUS=$status KVMRS_J_HARD=$hard KVMRS_J_WALL=$wall KVMRS_J_QRC=$qrc \
KVMRS_J_TIMEDOUT=$timed_out KVMRS_J_DONE=$done_seen KVMRS_J_LOG=$log \
KVMRS_J_LOADFAIL=$(grep -c KVMRS-LOAD-FAILED "$work/log" || true) \
KVMRS_J_RELEASE=$release KVMRS_J_MODULES=$mods_label KVMRS_J_KVM_PARAMS=$kvm_params \
KVMRS_J_AMD_PARAMS=$amd_params KVMRS_J_INTEL_PARAMS=$intel_params KVMRS_J_MACHINE=$machine KVMRS_J_SMP=$smp KVMRS_J_TCG=$tcg KVMRS_J_ICOUNT=$icount \
KVMRS_J_MEM=$mem python3 - "$work/results.tsv" "$work/splats" "$work/log" > "$json.tmp" <<'PY' || json_rc=$?
import json, os, re, sys
e = lambda k: os.environ["KVMRS_J_" + k]
tests = []
for line in open(sys.argv[1]):
    name, res, wall, guest, rc, note = line.rstrip("\n").split("\t")
    num = lambda v: None if v in ("-", "") else float(v)
    tests.append({"name": name, "result": res, "rc": int(rc) if rc else None,
                  "wall_s": num(wall), "guest_s": num(guest), "note": note.strip()})
log = open(sys.argv[3], errors="replace").read()
# each test's own output, between its markers: a failing test keeps its
# last lines and the line that says why (assertion, guest exit reason)
seg, cur = {}, None
for l in log.splitlines():
    m = re.search(r"KVMRS-TEST-(BEGIN|END) (\S+)", l)
    if m:
        cur = m.group(2) if m.group(1) == "BEGIN" else None
        continue
    if cur is not None:
        seg.setdefault(cur, []).append(l)
for t in tests:
    if t["result"] in ("PASS", "SKIP"):
        continue
    out = seg.get(t["name"], [])
    why = [l.strip() for l in out if re.search(
        r"exit_reason=|Invalid guest sync|Assertion|assert|not ok|Killed|WARNING:|BUG:", l)]
    t["why"] = why[:4]
    t["output_tail"] = [l.strip() for l in out[-8:]]
def marker(tag):
    m = re.findall(r"KVMRS-%s (.*)" % tag, log)
    return m[-1].strip() if m else None
stats = marker("STATS")
counters = {}
if stats and stats != "n/a":
    # "rust_fixed 65536 rust_spurious 21702 ... diff_checked 0 ..."
    counters = {k: int(v) for k, v in re.findall(r"(\w+)[ =](\d+)", stats)}
params = marker("PARAMS")
print(json.dumps({
    "verdict": "PASS" if e("STATUS") == "0" else "FAIL",
    "hard_failure": e("HARD") == "1",
    "wall_s": float(e("WALL")), "qemu_rc": int(e("QRC")),
    "timed_out": e("TIMEDOUT") == "1", "done": e("DONE") == "1",
    "load_failed": e("LOADFAIL") not in ("", "0"),
    "kernel": e("RELEASE"), "modules": e("MODULES"),
    "machine": e("MACHINE"),
    "kvm_params": e("KVM_PARAMS"), "amd_params": e("AMD_PARAMS"),
    "intel_params": e("INTEL_PARAMS"),
    "params_read_back": params, "smp": int(e("SMP")), "tcg": e("TCG"),
    "icount": e("ICOUNT") == "1", "mem": e("MEM"), "log": e("LOG"),
    "kernel_reports": [l for l in open(sys.argv[2]).read().splitlines() if l],
    "stats_raw": stats, "counters": counters,
    "tests": tests,
}, indent=1))
PY
if [ "${json_rc:-0}" = 0 ]; then mv "$json.tmp" "$json"; echo "vm: result: $json"
else echo "vm: FAILED: could not write the result file $json" >&2; status=1; fi
if [ "$status" = 0 ]; then ok "vm: no failure, no kernel report"; else echo "vm: FAILED" >&2; fi
exit $status
