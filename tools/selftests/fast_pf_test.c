// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvm-rs fast page fault tests.
 *
 * Exercises KVM's lockless fast page fault path (fast_page_fault() and, in
 * kvm-rs, its Rust TDP MMU implementation) through dirty logging: with
 * KVM_MEM_LOG_DIRTY_PAGES the SPTEs of a slot are write-protected but stay
 * MMU-writable, so every first guest write after a KVM_GET_DIRTY_LOG is a
 * write-protection fault that the fast path fixes outside mmu_lock.
 *
 * kselftest_harness tests (-l lists them, -t <test> selects by test name,
 * -r <fixture>[.<variant>].<test> by full name, default: all):
 *
 *   fast_pf.4k    N 4K pages (anonymous, MADV_NOHUGEPAGE): populate, enable
 *           dirty logging, write every page again.  Asserts the dirty bitmap
 *           is exactly the N pages, the vCPU stat pf_fast grew by N (0 with
 *           kvm.tdp_fast_pf=off on the TDP MMU), N kvmmmu:fast_page_fault
 *           events with "fixed 1" (tracefs), and the kvm_rs counters of
 *           the active mode (below).
 *   fast_pf_huge.no_eager_split.huge, fast_pf_huge.eager_split.huge
 *           anonymous_thp backing: 2M mappings under dirty logging must not
 *           be made writable by the fast path; every written 4K page must be
 *           in the dirty log.  The variants set kvm.eager_page_split=N (the
 *           2M SPTEs stay and are write-protected) and =Y (split when
 *           logging starts); SKIP without 2M mappings (THP unavailable).
 *   fast_pf.switch  the vCPU writes pseudo-random page subsets under dirty
 *           logging while a thread cycles kvm.tdp_fast_pf through rust/c/off;
 *           every round's log must be exactly the written pages.
 *   fast_pf.spurious  a write to a page whose SPTE is already writable after
 *           a fixed fault is not counted as fixed (two vCPUs race to the same
 *           pages; fixed + spurious == faults, fixed == pages).
 *   fast_pf.race  two vCPUs write the same write-protected pages at the same
 *           time, round after round (the dirty log re-protects them), so
 *           that their fast paths race on each SPTE: every page is fixed
 *           exactly once per round, the dirty log is exact and every word
 *           each vCPU wrote is intact.  The test build's counters show the
 *           compare-exchanges lost (the loser re-walks and finds the fix);
 *           with -P the test fails if none was lost.
 *   fast_pf.mmio  the vCPU writes N times, alternately to two guest-physical
 *           pages that no memslot backs: every write must exit to
 *           userspace as MMIO with its address and value.  With
 *           kvm.mmio_caching=Y the first write to each page installs an
 *           MMIO SPTE and the others find it through kvm_tdp_mmu_get_walk()
 *           (the Rust walk in kvm-rs): kvmmmu:handle_mmio_page_fault must
 *           fire for N - 2 of them.  Alternating defeats the vCPU's
 *           one-entry MMIO cache (vcpu->arch.mmio_gfn), which would
 *           otherwise answer every fault on one page without a walk.
 *   fast_pf_access.{plain,dirty_log,counters}.access  (-t access) access
 *           tracking: the test runs in a memory cgroup of its own and ages
 *           the guest's memory through MGLRU, as access_tracking_perf_test
 *           does; after each aging the guest reads every page and writes
 *           some.  plain: every read returns the last write; dirty_log: the
 *           same with dirty logging on, and each round's log is exactly the
 *           written pages; counters: the fast path fixed every aged page
 *           (tracepoint, kvm_rs counters, pf_fast).  Only with kvm_intel
 *           ept=Y eptad=N does aging make SPTEs fault: elsewhere (AMD NPT,
 *           eptad=Y) counters is a SKIP that says why.  See the test.
 *
 * Options of this test, taken out before the harness parses the rest:
 *   -n <pages>   pages per memslot (default 4096, at least 64)
 *   -i <rounds>  rounds of fast_pf.switch and fast_pf.race (default 40)
 *   -P           fast_pf.race: the vCPUs meet before every page, and the
 *                test fails unless a compare-exchange was lost (for runs
 *                where the vCPUs execute in parallel)
 * e.g. "fast_pf_test -t switch -n 2048 -i 30".  The harness's own -r runs a
 * test by full name, hence -i for the rounds (dirty_log_perf_test's letter
 * for iterations).
 *
 * fast_pf_access needs MGLRU (CONFIG_LRU_GEN, debugfs lru_gen) and a cgroup2
 * mount with the memory controller, else it is skipped.
 *
 * Module interface (kvm-rs): /sys/module/kvm/parameters/tdp_fast_pf =
 * rust|c|off; the vCPU stats rust_fast_pf_{fixed,spurious,invalid} (the
 * Rust path's results); in the test build (CONFIG_KVM_RUST_FAST_PF_DIFF)
 * also /sys/kernel/debug/kvm_rs/fast_pf_stats ("key value" lines: every
 * path's results, lost compare-exchanges, the differential check), whose
 * rust_* counts must move as the vCPU stats do.  With stock modules those
 * are absent: fast_pf.switch is skipped and the kvm_rs counter checks are
 * not made.  The fixtures save the module
 * parameters a test changes and restore them in the harness's parent
 * process, so a failed or crashed test does not leave them changed.
 *
 * Exit code: 0 if every selected test passed or was skipped and at least
 * one passed, 4 (KSFT_SKIP) if all were skipped, 1 if any failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>
#include <linux/bitmap.h>

#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"
#include "ucall_common.h"

/*
 * kselftest_harness.h rather than kvm_test_harness.h: its one-vCPU suite
 * creates the VM with the default layout, and these tests need their own
 * memslot sizes and, for fast_pf.spurious, two vCPUs.
 */
#include "kselftest_harness.h"

#include "kvmrs_util.h"

/*
 * Per-test harness timeout, above tools/vm's 600 s per-test limit so that
 * under scripts/vm.sh a hung test is still the runner's TIMEOUT.
 */
#define FAST_PF_TIMEOUT	900

#define TEST_SLOT	1
#define TEST_GPA	0x40000000ULL	/* 1 GiB: 2M aligned */
#define TEST_GVA	TEST_GPA
#define PG_SIZE		4096ULL
#define HPAGE_PAGES	512ULL

#define PARAM_EAGER	"/sys/module/kvm/parameters/eager_page_split"
#define TRACEFS		"/sys/kernel/tracing"
#define TRACE_EVENT_EN	TRACEFS "/events/kvmmmu/fast_page_fault/enable"
#define TRACE_AGED_EN	TRACEFS "/events/kvmmmu/kvm_tdp_mmu_spte_changed/enable"
#define TRACE_MMIO_EN	TRACEFS "/events/kvmmmu/handle_mmio_page_fault/enable"

/* fast_pf.mmio: a page no memslot backs, above TEST_GPA's slot */
#define MMIO_GPA	0xc0000000ULL
#define MMIO_GVA	MMIO_GPA

/* fast_pf_access: aging rounds, each followed by a read (and write) of every page */
#define ACCESS_ROUNDS	3

/* Guest parameters, written by the host before each round. */
static u64 guest_npages;
static u64 guest_round;
static u64 guest_mod;		/* 0: every page; else pseudo-random 1/mod */
static u64 guest_first;		/* first page index this vCPU writes */
static u64 guest_stride;	/* page index step (1: all) */

static inline bool page_selected(u64 i, u64 r, u64 mod)
{
	u64 h;

	if (mod == 0)
		return true;
	h = (i + 1) * 0x9E3779B97F4A7C15ULL ^ (r + 1) * 0xBF58476D1CE4E5B9ULL;
	h ^= h >> 31;
	h *= 0x94D049BB133111EBULL;
	h ^= h >> 29;
	return h % mod == 0;
}

static inline u64 marker(u64 i, u64 r)
{
	return (r << 32) | i | (1ULL << 63);
}

static void guest_code(void)
{
	for (;;) {
		u64 n = READ_ONCE(guest_npages), r = READ_ONCE(guest_round);
		u64 mod = READ_ONCE(guest_mod), first = READ_ONCE(guest_first);
		u64 stride = READ_ONCE(guest_stride), i;

		for (i = first; i < n; i += stride)
			if (page_selected(i, r, mod))
				WRITE_ONCE(*(u64 *)(TEST_GVA + i * PG_SIZE), marker(i, r));
		GUEST_SYNC(r);
	}
}

/* fast_pf.race: barrier arrivals, and the number of vCPUs to wait for. */
static u64 guest_arrived;
static u64 guest_nr_vcpus;
static u64 guest_lockstep;	/* 1: a barrier before every page, else per round */

/*
 * A barrier waits at most this many PAUSEs: the barrier lines the vCPUs up
 * to make their faults collide, and nothing in the test's verdict rests on
 * it.  Unbounded, it made each of the round's 1024 barriers wait for the
 * host to run both vCPU threads at once: with another VM on the host, runs
 * took 15-47 s instead of 6-8 s and some passed a 60 s limit.
 */
#define GUEST_BARRIER_SPINS	2000
static u64 guest_barrier_cut;	/* waits that gave up (atomic, summed) */

/*
 * Wait until all vCPUs have arrived @k + 1 times, or GUEST_BARRIER_SPINS.
 * A vCPU that gave up arrives at @k + 1 early, and that arrival lets the
 * laggards through barrier @k at once: they catch up rather than drift.
 */
static inline void guest_barrier(u64 nr, u64 k)
{
	u64 spins = 0;

	__atomic_fetch_add(&guest_arrived, 1, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&guest_arrived, __ATOMIC_SEQ_CST) < nr * (k + 1)) {
		if (++spins > GUEST_BARRIER_SPINS) {
			__atomic_fetch_add(&guest_barrier_cut, 1, __ATOMIC_RELAXED);
			break;
		}
		asm volatile("pause" ::: "memory");
	}
}

/*
 * fast_pf.race's guest, vCPU @idx: write word @idx of every page, in the
 * same order as the others, after a barrier: with guest_lockstep one
 * before every page, so that the vCPUs fault on each page together (the
 * leader would otherwise take every fault and the others follow in its
 * wake), else one per round.  Lockstep is for vCPUs that run in parallel;
 * time-shared, every barrier waits for a switch of guest CPU.
 */
static void guest_race_code(u64 idx)
{
	u64 k = 0;

	for (;;) {
		u64 n = READ_ONCE(guest_npages), r = READ_ONCE(guest_round);
		u64 nr = READ_ONCE(guest_nr_vcpus), lockstep = READ_ONCE(guest_lockstep);
		u64 i;

		if (!lockstep)
			guest_barrier(nr, k++);
		for (i = 0; i < n; i++) {
			if (lockstep)
				guest_barrier(nr, k++);
			WRITE_ONCE(((u64 *)(TEST_GVA + i * PG_SIZE))[idx],
				   marker(i, r) + idx);
		}
		GUEST_SYNC(r);
	}
}

/*
 * fast_pf_access: round 0 writes every page, odd rounds every page, even
 * rounds a pseudo-random half, so that the dirty log of an even round has
 * pages that must not be in it.
 */
static inline u64 access_round_mod(u64 r)
{
	return r && !(r & 1) ? 2 : 0;
}

static inline bool access_written(u64 i, u64 r)
{
	return page_selected(i, r, access_round_mod(r));
}

/* The last round <= r that wrote page i (round 0 wrote every page). */
static inline u64 last_write_round(u64 i, u64 r)
{
	while (r && !access_written(i, r))
		r--;
	return r;
}

/* Of the pages written in round r, these are written before being read. */
static inline bool access_write_first(u64 i, u64 r)
{
	return access_written(i, r) && ((i ^ r) & 1);
}

/* Written by guest_access_code() for the host: bad reads of the last round. */
static u64 guest_bad_reads;
static u64 guest_first_bad_page;
static u64 guest_first_bad_value;

/*
 * fast_pf_access's guest: in round r > 0, read word 0 of every page and
 * compare it with what the last write to it stored, and write the pages of
 * round r.  Half of those are written first (word 1, then word 0 after the
 * read), so that the first access to an aged page is a write: one fix that
 * both restores the access-tracked SPTE and makes it writable.  The other
 * pages are read first: a restore, then, if written, a separate W fix.
 *
 * Aging clears the accessed state without flushing TLBs (clear_young), so a
 * translation cached from before the aging could let an access through
 * without a fault.  INVLPG drops the cached linear and combined (EPT/NPT)
 * translations of the page (SDM 28.4.3.1), so that the first access walks
 * the aged SPTE.
 */
static void guest_access_code(void)
{
	for (;;) {
		u64 n = READ_ONCE(guest_npages), r = READ_ONCE(guest_round);
		u64 bad = 0, first = 0, value = 0, i;

		for (i = 0; i < n; i++) {
			u64 *p = (u64 *)(TEST_GVA + i * PG_SIZE);
			u64 v;

			kvmrs_invlpg((u64)p);
			if (r && access_write_first(i, r))
				WRITE_ONCE(p[1], marker(i, r));
			if (r) {
				v = READ_ONCE(p[0]);
				if (v != marker(i, last_write_round(i, r - 1)) && !bad++) {
					first = i;
					value = v;
				}
			}
			if (access_written(i, r))
				WRITE_ONCE(p[0], marker(i, r));
		}
		WRITE_ONCE(guest_bad_reads, bad);
		WRITE_ONCE(guest_first_bad_page, first);
		WRITE_ONCE(guest_first_bad_value, value);
		GUEST_SYNC(r);
	}
}

/* ---- host helpers ------------------------------------------------------ */

static u64 opt_npages = 4096;
static u32 opt_rounds = 40;

static bool opt_parallel;

struct test_vm {
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu[2];
	int nr_vcpus;
	u64 npages;
	unsigned long *bmap;
};

/*
 * The rust_* counts are the vCPU stats rust_fast_pf_{fixed,spurious,invalid}
 * of kvm.ko with kvm.tdp_fast_pf; the others are in KVMRS_STATS, which only
 * the test build (CONFIG_KVM_RUST_FAST_PF_DIFF) has.
 */
enum {
	RS_RUST_FIXED, RS_RUST_SPURIOUS, RS_RUST_INVALID, RS_C_FIXED,
	RS_C_SPURIOUS, RS_C_INVALID, RS_OFF_INVALID, RS_RUST_LOST,
	RS_RUST_BOUND, RS_C_LOST, RS_C_BOUND, RS_NR
};

static const char *const rs_keys[RS_NR] = {
	"rust_fixed", "rust_spurious", "rust_invalid", "c_fixed",
	"c_spurious", "c_invalid", "off_invalid", "rust_lost_cmpxchg",
	"rust_retry_bound", "c_lost_cmpxchg", "c_retry_bound",
};

/*
 * valid: kvm.ko is ours (it has kvm.tdp_fast_pf, hence the vCPU stats);
 * c_off: KVMRS_STATS exists, with the C and off counters and the test
 * build's own count of the Rust path (file_rust), which must agree with the
 * vCPU stats.  Missing counters read as 0.
 */
struct rs_stats {
	bool valid;
	bool c_off;
	u64 v[RS_NR];
	u64 file_rust[RS_C_FIXED];
};

/* The counters now, while @t's vCPUs exist (the vCPU stats go with them). */
static void read_rs_stats(const struct test_vm *t, struct rs_stats *s)
{
	char line[256], key[128];
	unsigned long long val;
	int i, found = 0, found_c_off = 0;
	FILE *f;

	memset(s, 0, sizeof(*s));
	if (access(PARAM_MODE, F_OK))
		return;
	static_assert(RS_RUST_FIXED == 0 && RS_RUST_INVALID == 2, "kvmrs_rust_stats order");
	kvmrs_rust_stats(t->vcpu, t->nr_vcpus, s->v);
	s->valid = true;
	f = fopen(KVMRS_STATS, "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%127s %llu", key, &val) != 2)
			continue;
		for (i = 0; i < RS_NR; i++) {
			if (strcmp(key, rs_keys[i]))
				continue;
			if (i < RS_C_FIXED) {
				s->file_rust[i] = val;
				found++;
			} else {
				s->v[i] = val;
				found_c_off++;
			}
		}
	}
	fclose(f);
	TEST_ASSERT(found == RS_C_FIXED && found_c_off == RS_NR - RS_C_FIXED,
		    "%s has %d of the %d keys", KVMRS_STATS, found + found_c_off,
		    RS_NR);
	s->c_off = true;
}

/*
 * The deltas from @a to @b; in the test build, also that its own count of
 * the Rust path moved as the vCPU stats did (nothing else runs a VM here).
 */
static void rs_delta(const struct rs_stats *a, const struct rs_stats *b, u64 *d)
{
	int i;

	for (i = 0; i < RS_NR; i++)
		d[i] = b->v[i] - a->v[i];
	for (i = 0; b->c_off && a->c_off && i < RS_C_FIXED; i++)
		TEST_ASSERT(b->file_rust[i] - a->file_rust[i] == d[i],
			    "vCPU stats: %s +%llu, but %s: +%llu", rs_keys[i],
			    (unsigned long long)d[i], KVMRS_STATS,
			    (unsigned long long)(b->file_rust[i] - a->file_rust[i]));
}

static void print_rs_delta(const u64 *d)
{
	int i;

	ksft_print_msg("kvm_rs counter deltas:");
	for (i = 0; i < RS_NR; i++)
		printf(" %s=%llu", rs_keys[i], (unsigned long long)d[i]);
	printf("\n");
}

/* tracefs: count kvmmmu:fast_page_fault events of one phase. */
struct trace_count {
	bool valid;
	u64 total, fixed, spurious;
	bool lost;
};

static bool trace_available(void)
{
	return access(TRACE_EVENT_EN, W_OK) == 0;
}

/* kvmmmu:kvm_tdp_mmu_spte_changed too, for counting aged SPTEs */
static bool trace_aged_available(void)
{
	return trace_available() && access(TRACE_AGED_EN, W_OK) == 0;
}

/* Clear the trace buffer and record the event whose enable file is @enable. */
static void trace_start(const char *enable)
{
	char buf[32];
	int fd;

	if (!trace_available())
		return;
	/* at least 8 MiB per CPU so a phase fits without overwrites */
	if (read_file_str(TRACEFS "/buffer_size_kb", buf, sizeof(buf)) && atol(buf) < 8192)
		write_file_str(TRACEFS "/buffer_size_kb", "8192");
	fd = open(TRACEFS "/trace", O_WRONLY | O_TRUNC);	/* clears the buffer */
	TEST_ASSERT(fd >= 0, "cannot clear " TRACEFS "/trace: %s", strerror(errno));
	close(fd);
	TEST_ASSERT(write_file_str(enable, "1"), "cannot enable %s", enable);
	write_file_str(TRACEFS "/tracing_on", "1");
}

static void trace_begin(void)
{
	trace_start(TRACE_EVENT_EN);
}

/*
 * Stop recording the event of @enable and open the trace for reading; NULL
 * without tracefs.
 */
static FILE *trace_stop(const char *enable)
{
	FILE *f;

	if (!trace_available())
		return NULL;
	TEST_ASSERT(write_file_str(enable, "0"), "cannot disable %s", enable);
	f = fopen(TRACEFS "/trace", "r");
	TEST_ASSERT(f, "cannot read " TRACEFS "/trace");
	return f;
}

/* The trace's header line that says the ring buffer overwrote events. */
static bool trace_line_lost(const char *line)
{
	unsigned long in_buf, written;

	return sscanf(line, "# entries-in-buffer/entries-written: %lu/%lu",
		      &in_buf, &written) == 2 && in_buf != written;
}

/*
 * Stop recording the event of @enable and count its lines, those whose text
 * has @event, into @tc (fixed and spurious: fast_page_fault's fields).
 */
static void trace_count(struct trace_count *tc, const char *enable,
			const char *event)
{
	char line[512];
	FILE *f;

	memset(tc, 0, sizeof(*tc));
	f = trace_stop(enable);
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (trace_line_lost(line))
			tc->lost = true;
		if (line[0] == '#' || !strstr(line, event))
			continue;
		tc->total++;
		if (strstr(line, " fixed 1"))
			tc->fixed++;
		if (strstr(line, " spurious 1"))
			tc->spurious++;
	}
	fclose(f);
	tc->valid = true;
}

static void trace_end(struct trace_count *tc)
{
	trace_count(tc, TRACE_EVENT_EN, "fast_page_fault:");
}

/* ---- VM setup ---------------------------------------------------------- */

static void __test_vm_create(struct test_vm *t, enum vm_mem_backing_src_type src,
			     u64 npages, int nr_vcpus, void *guest)
{
	u64 extra = npages / 256 + 64;	/* guest page tables for the mapping */

	memset(t, 0, sizeof(*t));
	t->npages = npages;
	t->nr_vcpus = nr_vcpus;
	t->vm = __vm_create_with_vcpus(VM_SHAPE_DEFAULT, nr_vcpus, extra,
				       guest, t->vcpu);
	vm_userspace_mem_region_add(t->vm, src, TEST_GPA, TEST_SLOT, npages, 0);
	virt_map(t->vm, TEST_GVA, TEST_GPA, npages);
	t->bmap = bitmap_zalloc(npages);
	TEST_ASSERT(t->bmap, "bitmap_zalloc");
	guest_npages = npages;
	sync_global_to_guest(t->vm, guest_npages);
}

static void test_vm_create(struct test_vm *t, enum vm_mem_backing_src_type src,
			   u64 npages, int nr_vcpus)
{
	__test_vm_create(t, src, npages, nr_vcpus, guest_code);
}

static void test_vm_free(struct test_vm *t)
{
	kvm_vm_free(t->vm);
	free(t->bmap);
}

/* A vCPU exit its test did not expect: the guest's assertion, or the exit. */
static void fail_ucall(struct kvm_vcpu *vcpu, struct ucall *uc)
{
	if (uc->cmd == UCALL_ABORT)
		REPORT_GUEST_ASSERT(*uc);
	TEST_FAIL("unexpected exit %s, ucall %lu",
		  exit_reason_str(vcpu->run->exit_reason), (unsigned long)uc->cmd);
}

static void vcpu_run_round(struct kvm_vcpu *vcpu, u64 r)
{
	struct ucall uc;

	vcpu_run(vcpu);
	switch (get_ucall(vcpu, &uc)) {
	case UCALL_SYNC:
		TEST_ASSERT(uc.args[1] == r, "guest synced round %lu, expected %lu",
			    (unsigned long)uc.args[1], (unsigned long)r);
		break;
	default:
		fail_ucall(vcpu, &uc);
	}
}

/* One round on vCPU 0: write the selected pages (mod 0 = all). */
static void run_round(struct test_vm *t, u64 r, u64 mod)
{
	guest_round = r;
	guest_mod = mod;
	guest_first = 0;
	guest_stride = 1;
	sync_global_to_guest(t->vm, guest_round);
	sync_global_to_guest(t->vm, guest_mod);
	sync_global_to_guest(t->vm, guest_first);
	sync_global_to_guest(t->vm, guest_stride);
	vcpu_run_round(t->vcpu[0], r);
}

#define LOG_MISSING_FMT "round %lu: %lu of %lu written pages missing from the dirty log (first: page %lu)\n"

/*
 * Fetch (and thereby clear/re-protect) the dirty log and compare it with the
 * pages written in round r.  Also check the memory contents of those pages.
 */
static void check_log(struct test_vm *t, u64 r, u64 mod, u64 *missing, u64 *extra,
		      u64 *expected)
{
	u64 i, first_missing = ~0ULL;

	bitmap_zero(t->bmap, t->npages);
	kvm_vm_get_dirty_log(t->vm, TEST_SLOT, t->bmap);
	*missing = *extra = *expected = 0;
	for (i = 0; i < t->npages; i++) {
		bool want = page_selected(i, r, mod), got = test_bit(i, t->bmap);

		if (want) {
			u64 v = *(u64 *)addr_gpa2hva(t->vm, TEST_GPA + i * PG_SIZE);

			(*expected)++;
			TEST_ASSERT(v == marker(i, r),
				    "page %lu: memory %#lx, expected %#lx (round %lu)",
				    (unsigned long)i, (unsigned long)v,
				    (unsigned long)marker(i, r), (unsigned long)r);
		}
		if (want && !got) {
			(*missing)++;
			if (first_missing == ~0ULL)
				first_missing = i;
		}
		if (!want && got)
			(*extra)++;
	}
	if (*missing)
		ksft_print_msg(LOG_MISSING_FMT,
			       (unsigned long)r, (unsigned long)*missing,
			       (unsigned long)*expected, (unsigned long)first_missing);
}

static void enable_dirty_logging(struct test_vm *t)
{
	u64 i, n = 0;

	vm_mem_region_set_flags(t->vm, TEST_SLOT, KVM_MEM_LOG_DIRTY_PAGES);
	/* collect + clear: nothing was written since logging started */
	bitmap_zero(t->bmap, t->npages);
	kvm_vm_get_dirty_log(t->vm, TEST_SLOT, t->bmap);
	for (i = 0; i < t->npages; i++)
		n += test_bit(i, t->bmap);
	TEST_ASSERT(n == 0, "%lu pages dirty right after enabling dirty logging", (unsigned long)n);
}

/* ---- fixtures ------------------------------------------------------------ */

/*
 * fast_pf: the module configuration the test runs under.  Teardown runs in
 * the harness's parent process, after the test process is gone, and puts
 * kvm.tdp_fast_pf back if the test (fast_pf.switch) left it changed.
 */
FIXTURE(fast_pf) {
	char mode[16];		/* kvm.tdp_fast_pf at setup; "stock" without it */
	bool tdp_mmu;
};

FIXTURE_SETUP(fast_pf)
{
	fast_pf_mode(self->mode, sizeof(self->mode));
	self->tdp_mmu = get_kvm_param_bool("tdp_mmu");
	ksft_print_msg("%lu pages, tdp_mmu=%c, tdp_fast_pf=%s\n",
		       (unsigned long)opt_npages, self->tdp_mmu ? 'Y' : 'N', self->mode);
}

FIXTURE_TEARDOWN_PARENT(fast_pf)
{
	char now[16];

	if (!strcmp(self->mode, "stock"))
		return;
	fast_pf_mode(now, sizeof(now));
	if (!strcmp(now, self->mode))
		return;
	ksft_print_msg("restoring kvm.tdp_fast_pf=%s (the test left %s)\n", self->mode, now);
	EXPECT_TRUE(write_file_str(PARAM_MODE, self->mode))
		TH_LOG("cannot restore kvm.tdp_fast_pf=%s (now %s)", self->mode, now);
}

/*
 * fast_pf_huge: THP backing under each kvm.eager_page_split setting; the
 * parameter is restored in the parent, as for fast_pf.
 */
FIXTURE(fast_pf_huge) {
	bool saved_eager;
	bool changed;
};

FIXTURE_VARIANT(fast_pf_huge) {
	bool eager_split;
};

FIXTURE_VARIANT_ADD(fast_pf_huge, no_eager_split) {
	.eager_split = false,
};

FIXTURE_VARIANT_ADD(fast_pf_huge, eager_split) {
	.eager_split = true,
};

FIXTURE_SETUP(fast_pf_huge)
{
	if (access(PARAM_EAGER, W_OK))
		SKIP(return, "cannot set %s", PARAM_EAGER);
	self->saved_eager = get_kvm_param_bool("eager_page_split");
	self->changed = true;
	ASSERT_TRUE(write_file_str(PARAM_EAGER, variant->eager_split ? "Y" : "N"))
		TH_LOG("cannot write %s", PARAM_EAGER);
	ASSERT_EQ(variant->eager_split, get_kvm_param_bool("eager_page_split"));
}

FIXTURE_TEARDOWN_PARENT(fast_pf_huge)
{
	if (self->changed) {
		ksft_print_msg("restoring kvm.eager_page_split=%c\n",
			       self->saved_eager ? 'Y' : 'N');
		EXPECT_TRUE(write_file_str(PARAM_EAGER, self->saved_eager ? "Y" : "N"))
			TH_LOG("cannot restore %s", PARAM_EAGER);
	}
}

/* ---- fast_pf.4k -------------------------------------------------------------- */

#define TRACE_4K_FMT "4k: kvmmmu:fast_page_fault fixed=1 events %lu (want %lu; total %lu, spurious %lu%s)\n"

TEST_F_TIMEOUT(fast_pf, 4k, FAST_PF_TIMEOUT)
{
	u64 n = opt_npages, missing, extra, expected, pf0, pf1, d[RS_NR];
	const char *mode = self->mode;
	bool tdp = self->tdp_mmu;
	bool off = tdp && !strcmp(mode, "off");
	u64 want_fast = off ? 0 : n;
	struct rs_stats rs0, rs1;
	struct trace_count tc;
	struct test_vm t;
	int i;

	test_vm_create(&t, VM_MEM_SRC_ANONYMOUS, n, 1);
	run_round(&t, 0, 0);			/* populate: slow path */
	enable_dirty_logging(&t);

	pf0 = kvmrs_vcpu_stat(t.vcpu[0], pf_fast);
	read_rs_stats(&t, &rs0);
	trace_begin();
	run_round(&t, 1, 0);			/* every page: one WP fault */
	trace_end(&tc);
	read_rs_stats(&t, &rs1);
	pf1 = kvmrs_vcpu_stat(t.vcpu[0], pf_fast);
	check_log(&t, 1, 0, &missing, &extra, &expected);
	test_vm_free(&t);

	/* the dirty log is exactly the N written pages */
	ksft_print_msg("4k: dirty log %lu/%lu pages, %lu missing, %lu extra\n",
		       (unsigned long)(expected - missing), (unsigned long)n,
		       (unsigned long)missing, (unsigned long)extra);
	EXPECT_EQ(n, expected);
	EXPECT_EQ(0, missing);
	EXPECT_EQ(0, extra);

	/* each write was one fast fix (none: tdp_fast_pf=off on the TDP MMU) */
	ksft_print_msg("4k: pf_fast +%lu (want %lu)\n",
		       (unsigned long)(pf1 - pf0), (unsigned long)want_fast);
	EXPECT_EQ(want_fast, pf1 - pf0);

	if (!tc.valid) {
		ksft_print_msg("4k: tracepoint not checked (no %s)\n", TRACE_EVENT_EN);
	} else {
		ksft_print_msg(TRACE_4K_FMT,
			       (unsigned long)tc.fixed, (unsigned long)want_fast,
			       (unsigned long)tc.total, (unsigned long)tc.spurious,
			       tc.lost ? ", EVENTS LOST" : "");
		EXPECT_FALSE(tc.lost);
		EXPECT_EQ(want_fast, tc.fixed);
	}

	if (!rs0.valid || !rs1.valid) {
		ksft_print_msg("4k: kvm_rs counters not checked (no %s: stock modules?)\n",
			       PARAM_MODE);
		return;
	}
	rs_delta(&rs0, &rs1, d);
	print_rs_delta(d);
	if (!tdp) {
		/* shadow MMU: plain C, kvm_rs counters never move */
		for (i = 0; i < RS_NR; i++) {
			EXPECT_EQ(0, d[i])
				TH_LOG("kvm_rs %s moved with tdp_mmu=N", rs_keys[i]);
		}
	} else if (!strcmp(mode, "rust")) {
		EXPECT_EQ(n, d[RS_RUST_FIXED]);
		EXPECT_EQ(0, d[RS_C_FIXED]);
		EXPECT_EQ(0, d[RS_OFF_INVALID]);
		EXPECT_EQ(0, d[RS_C_INVALID]);
	} else if (!rs1.c_off && (!strcmp(mode, "c") || !strcmp(mode, "off"))) {
		/* a production build counts only the Rust path */
		ksft_print_msg("4k: no c_* or off_* counters (production build): rust_* checked\n");
		EXPECT_EQ(0, d[RS_RUST_FIXED]);
		EXPECT_EQ(0, d[RS_RUST_SPURIOUS]);
		EXPECT_EQ(0, d[RS_RUST_INVALID]);
	} else if (!strcmp(mode, "c")) {
		EXPECT_EQ(n, d[RS_C_FIXED]);
		EXPECT_EQ(0, d[RS_RUST_FIXED]);
		EXPECT_EQ(0, d[RS_OFF_INVALID]);
		EXPECT_EQ(0, d[RS_RUST_INVALID]);
	} else if (!strcmp(mode, "off")) {
		EXPECT_EQ(n, d[RS_OFF_INVALID]);
		EXPECT_EQ(0, d[RS_RUST_FIXED]);
		EXPECT_EQ(0, d[RS_C_FIXED]);
	} else {
		TH_LOG("unknown kvm.tdp_fast_pf mode '%s'", mode);
		EXPECT_TRUE(false);
	}
}

/* ---- fast_pf_huge.*.huge ------------------------------------------------------ */

#define HUGE_SUMMARY_FMT "huge: pf_fast +%lu, 2M mappings now %lu, extra dirty pages %lu, missing %lu\n"

TEST_F_TIMEOUT(fast_pf_huge, huge, FAST_PF_TIMEOUT)
{
	u64 n = (opt_npages + HPAGE_PAGES - 1) / HPAGE_PAGES * HPAGE_PAGES;
	u64 missing, extra, expected, tot_missing = 0, tot_extra = 0, huge, pf0, pf1, r;
	char eager = variant->eager_split ? 'Y' : 'N';
	struct test_vm t;

	test_vm_create(&t, VM_MEM_SRC_ANONYMOUS_THP, n, 1);
	run_round(&t, 0, 0);			/* populate: 2M mappings if THP */
	huge = kvmrs_vm_stat(t.vm, pages_2m);
	ksft_print_msg("huge: eager_page_split=%c, %lu pages, %lu 2M mappings after populate\n",
		       eager, (unsigned long)n, (unsigned long)huge);
	enable_dirty_logging(&t);

	pf0 = kvmrs_vcpu_stat(t.vcpu[0], pf_fast);
	/* several rounds of scattered writes, several pages per 2M region */
	for (r = 1; r <= 4; r++) {
		run_round(&t, r, 3);
		check_log(&t, r, 3, &missing, &extra, &expected);
		tot_missing += missing;
		tot_extra += extra;
	}
	pf1 = kvmrs_vcpu_stat(t.vcpu[0], pf_fast);
	ksft_print_msg(HUGE_SUMMARY_FMT,
		       (unsigned long)(pf1 - pf0), (unsigned long)kvmrs_vm_stat(t.vm, pages_2m),
		       (unsigned long)tot_extra, (unsigned long)tot_missing);
	test_vm_free(&t);

	/* a written page missing from the log is a bug with or without THP */
	EXPECT_EQ(0, tot_missing)
		TH_LOG("eager_page_split=%c: written pages missing from the dirty log", eager);
	if (!huge && !tot_missing)
		SKIP(return, "eager_page_split=%c: no 2M mappings (THP unavailable?)", eager);
}

/* ---- fast_pf.switch ------------------------------------------------------------ */

static bool switch_stop;
static unsigned long switch_count;

static void *switcher(void *arg)
{
	static const char *const modes[] = { "rust", "c", "off" };
	unsigned long i = 0;

	while (!READ_ONCE(switch_stop)) {
		TEST_ASSERT(write_file_str(PARAM_MODE, modes[i % 3]),
			    "writing '%s' to %s failed", modes[i % 3], PARAM_MODE);
		i++;
		usleep(200);
	}
	switch_count = i;
	return NULL;
}

TEST_F_TIMEOUT(fast_pf, switch, FAST_PF_TIMEOUT)
{
	u64 n = opt_npages, r, missing, extra, expected, bad_rounds = 0, written = 0;
	struct rs_stats rs0, rs1;
	struct test_vm t;
	pthread_t th;

	if (!strcmp(self->mode, "stock") || access(PARAM_MODE, W_OK))
		SKIP(return, "%s not writable (stock modules?)", PARAM_MODE);

	test_vm_create(&t, VM_MEM_SRC_ANONYMOUS, n, 1);
	run_round(&t, 0, 0);
	enable_dirty_logging(&t);
	read_rs_stats(&t, &rs0);

	WRITE_ONCE(switch_stop, false);
	pthread_create(&th, NULL, switcher, NULL);
	for (r = 1; r <= opt_rounds; r++) {
		run_round(&t, r, 2);
		check_log(&t, r, 2, &missing, &extra, &expected);
		written += expected;
		if (missing || extra) {
			ksft_print_msg("switch: round %lu: %lu missing, %lu extra\n",
				       (unsigned long)r, (unsigned long)missing,
				       (unsigned long)extra);
			bad_rounds++;
		}
	}
	WRITE_ONCE(switch_stop, true);
	pthread_join(th, NULL);
	TEST_ASSERT(write_file_str(PARAM_MODE, self->mode), "restoring tdp_fast_pf=%s", self->mode);
	read_rs_stats(&t, &rs1);
	if (rs0.valid && rs1.valid) {
		u64 d[RS_NR];

		rs_delta(&rs0, &rs1, d);
		print_rs_delta(d);
	}
	test_vm_free(&t);

	ksft_print_msg("switch: %u rounds, %lu page writes, %lu mode switches, %lu bad rounds\n",
		       opt_rounds, (unsigned long)written, switch_count,
		       (unsigned long)bad_rounds);
	EXPECT_EQ(0, bad_rounds) TH_LOG("rounds whose dirty log was not exact");
}

/* ---- fast_pf.spurious ------------------------------------------------------------ */

struct vcpu_arg {
	struct kvm_vcpu *vcpu;
	u64 r;
};

static void *vcpu_thread(void *arg)
{
	struct vcpu_arg *a = arg;

	vcpu_run_round(a->vcpu, a->r);
	return NULL;
}

/* Run round @r on every vCPU of @t at once (each in a thread of its own). */
static void run_round_all(struct test_vm *t, u64 r)
{
	struct vcpu_arg a[ARRAY_SIZE(t->vcpu)];
	pthread_t th[ARRAY_SIZE(t->vcpu)];
	int i;

	guest_round = r;
	sync_global_to_guest(t->vm, guest_round);
	for (i = 0; i < t->nr_vcpus; i++) {
		a[i].vcpu = t->vcpu[i];
		a[i].r = r;
		pthread_create(&th[i], NULL, vcpu_thread, &a[i]);
	}
	for (i = 0; i < t->nr_vcpus; i++)
		pthread_join(th[i], NULL);
}

#define RACE_VCPUS	2

#define SPURIOUS_SUMMARY_FMT "spurious: 2 vCPUs x %lu pages: pf_fast +%lu, trace total %lu fixed %lu (want %lu) spurious %lu, dirty log %lu missing %lu extra\n"

/*
 * Two vCPUs write the same pages in the same round: a page's second writer
 * either faults after the first fixed the SPTE (spurious, or no fault at all
 * if its TLB already has the writable entry) or races it.  Each page must be
 * fixed exactly once; every other fast-path outcome must be spurious.
 */
TEST_F_TIMEOUT(fast_pf, spurious, FAST_PF_TIMEOUT)
{
	u64 n = opt_npages, missing, extra, expected, pf0, pf1, want_fixed;
	const char *mode = self->mode;
	bool tdp = self->tdp_mmu;
	bool off = tdp && !strcmp(mode, "off");
	struct trace_count tc;
	struct rs_stats rs0, rs1;
	struct test_vm t;

	test_vm_create(&t, VM_MEM_SRC_ANONYMOUS, n, 2);
	guest_round = 0; guest_mod = 0; guest_first = 0; guest_stride = 1;
	sync_global_to_guest(t.vm, guest_round);
	sync_global_to_guest(t.vm, guest_mod);
	sync_global_to_guest(t.vm, guest_first);
	sync_global_to_guest(t.vm, guest_stride);
	vcpu_run_round(t.vcpu[0], 0);
	vcpu_run_round(t.vcpu[1], 0);
	enable_dirty_logging(&t);

	pf0 = kvmrs_vcpu_stat(t.vcpu[0], pf_fast) + kvmrs_vcpu_stat(t.vcpu[1], pf_fast);
	read_rs_stats(&t, &rs0);
	trace_begin();
	run_round_all(&t, 1);
	trace_end(&tc);
	read_rs_stats(&t, &rs1);
	pf1 = kvmrs_vcpu_stat(t.vcpu[0], pf_fast) + kvmrs_vcpu_stat(t.vcpu[1], pf_fast);
	check_log(&t, 1, 0, &missing, &extra, &expected);
	test_vm_free(&t);

	want_fixed = off ? 0 : n;
	ksft_print_msg(SPURIOUS_SUMMARY_FMT,
		       (unsigned long)n, (unsigned long)(pf1 - pf0),
		       (unsigned long)tc.total, (unsigned long)tc.fixed,
		       (unsigned long)want_fixed, (unsigned long)tc.spurious,
		       (unsigned long)missing, (unsigned long)extra);
	EXPECT_EQ(0, missing);
	EXPECT_EQ(0, extra);
	if (!tc.valid) {
		ksft_print_msg("spurious: no tracefs: fixed/spurious counts not checked\n");
	} else {
		EXPECT_FALSE(tc.lost);
		EXPECT_EQ(want_fixed, tc.fixed);
		if (!off)
			EXPECT_EQ(tc.fixed + tc.spurious, pf1 - pf0);
	}
	if (rs0.valid && rs1.valid) {
		u64 d[RS_NR];
		int f = !strcmp(mode, "c") ? RS_C_FIXED : RS_RUST_FIXED;

		rs_delta(&rs0, &rs1, d);
		print_rs_delta(d);
		/* the active implementation counts what the tracepoint shows */
		if (tdp && strcmp(mode, "off") && (f == RS_RUST_FIXED || rs1.c_off)) {
			EXPECT_EQ(n, d[f]) TH_LOG("kvm_rs %s", rs_keys[f]);
			if (tc.valid) {
				EXPECT_EQ(tc.spurious, d[f + 1])
					TH_LOG("kvm_rs %s", rs_keys[f + 1]);
			}
		}
	}
}

/* ---- fast_pf.mmio ---------------------------------------------------------------- */

#define MMIO_SUMMARY_FMT "mmio: %lu writes, %lu MMIO exits with the right address and value, mmio_caching=%c, handle_mmio_page_fault events %lu (want %lu%s)\n"

static void guest_mmio_code(void)
{
	u64 n = READ_ONCE(guest_npages), i;

	for (i = 0; i < n; i++)
		WRITE_ONCE(*(u64 *)(MMIO_GVA + (i & 1) * PAGE_SIZE), marker(i, 0));
	GUEST_DONE();
}

/*
 * The vCPU writes -n times, alternately to the two pages at MMIO_GPA, which
 * no memslot backs.  The first write to each takes the slow path, which
 * installs an MMIO SPTE (with MMIO caching); each later one faults on that
 * SPTE's reserved bits, misses the vCPU's MMIO cache (it holds the other
 * page) and handle_mmio_page_fault() finds the SPTE with
 * kvm_tdp_mmu_get_walk().  Every write must reach userspace as MMIO, with
 * its address and value.
 */
TEST_F_TIMEOUT(fast_pf, mmio, FAST_PF_TIMEOUT)
{
	u64 n = opt_npages, exits = 0, want_events;
	bool caching = get_kvm_param_bool("mmio_caching");
	struct kvm_vcpu *vcpu;
	struct trace_count tc;
	struct kvm_vm *vm;
	struct ucall uc;
	bool done = false;

	vm = vm_create_with_one_vcpu(&vcpu, guest_mmio_code);
	virt_map(vm, MMIO_GVA, MMIO_GPA, 2);
	guest_npages = n;
	sync_global_to_guest(vm, guest_npages);
	if (trace_available() && access(TRACE_MMIO_EN, W_OK) == 0)
		trace_start(TRACE_MMIO_EN);
	while (!done) {
		struct kvm_run *run = vcpu->run;

		vcpu_run(vcpu);
		if (run->exit_reason == KVM_EXIT_MMIO) {
			u64 v = 0;

			TEST_ASSERT(run->mmio.is_write && run->mmio.len == 8 &&
				    run->mmio.phys_addr == MMIO_GPA + (exits & 1) * PAGE_SIZE,
				    "MMIO exit %lu: %s of %u bytes at %#llx, want an 8-byte write at %#llx",
				    (unsigned long)exits, run->mmio.is_write ? "write" : "read",
				    run->mmio.len, run->mmio.phys_addr,
				    MMIO_GPA + (exits & 1) * PAGE_SIZE);
			memcpy(&v, run->mmio.data, sizeof(v));
			TEST_ASSERT(v == marker(exits, 0), "MMIO exit %lu wrote %#lx, want %#lx",
				    (unsigned long)exits, (unsigned long)v,
				    (unsigned long)marker(exits, 0));
			exits++;
			continue;
		}
		switch (get_ucall(vcpu, &uc)) {
		case UCALL_DONE:
			done = true;
			break;
		default:
			fail_ucall(vcpu, &uc);
		}
	}
	if (trace_available() && access(TRACE_MMIO_EN, W_OK) == 0)
		trace_count(&tc, TRACE_MMIO_EN, "handle_mmio_page_fault:");
	else
		memset(&tc, 0, sizeof(tc));
	kvm_vm_free(vm);

	want_events = caching && n > 2 ? n - 2 : 0;
	ksft_print_msg(MMIO_SUMMARY_FMT, (unsigned long)n, (unsigned long)exits,
		       caching ? 'Y' : 'N', (unsigned long)tc.total,
		       (unsigned long)want_events, tc.valid ? "" : ", no tracefs: not checked");
	EXPECT_EQ(n, exits);
	if (tc.valid) {
		EXPECT_FALSE(tc.lost);
		EXPECT_EQ(want_events, tc.total)
			TH_LOG("writes that found the MMIO SPTE through kvm_tdp_mmu_get_walk()");
	}
}

/* ---- fast_pf.race ---------------------------------------------------------------- */

#define RACE_ROUND_FMT "race: round %lu: %lu pages missing from the dirty log, %lu words wrong (first: page %lu word %d = %#lx)\n"
#define RACE_SUMMARY_FMT "race: %d vCPUs x %lu pages x %u rounds: pf_fast +%lu, %s fixed +%lu (want %lu) spurious +%lu, lost compare-exchanges +%lu, retry bound hit +%lu\n"

/*
 * The vCPUs of fast_pf.race start each round together and write the same
 * pages in the same order, each its own word of each page, after the dirty
 * log write-protected them all: their write faults on a page come at about
 * the same time, and where two fast paths read the same write-protected
 * snapshot, one compare-exchange wins and the other loses, re-walks and
 * finds the fix (spurious).  Whatever the interleaving: each page is fixed
 * once per round, the log is exactly the pages, and no write is lost.
 */
TEST_F_TIMEOUT(fast_pf, race, FAST_PF_TIMEOUT)
{
	u64 n = opt_npages, r, i, pf0 = 0, pf1 = 0, want_fixed;
	u64 bad_rounds = 0, d[RS_NR] = {};
	const char *mode = self->mode;
	bool tdp = self->tdp_mmu;
	bool off = tdp && !strcmp(mode, "off");
	bool c = !strcmp(mode, "c");
	struct rs_stats rs0, rs1;
	struct test_vm t;
	int v;

	__test_vm_create(&t, VM_MEM_SRC_ANONYMOUS, n, RACE_VCPUS, guest_race_code);
	for (v = 0; v < RACE_VCPUS; v++)
		vcpu_args_set(t.vcpu[v], 1, v);
	guest_nr_vcpus = RACE_VCPUS;
	guest_lockstep = 0;
	sync_global_to_guest(t.vm, guest_nr_vcpus);
	sync_global_to_guest(t.vm, guest_lockstep);
	run_round_all(&t, 0);			/* populate: slow path */
	guest_lockstep = opt_parallel;
	sync_global_to_guest(t.vm, guest_lockstep);
	enable_dirty_logging(&t);

	for (v = 0; v < RACE_VCPUS; v++)
		pf0 += kvmrs_vcpu_stat(t.vcpu[v], pf_fast);
	read_rs_stats(&t, &rs0);
	for (r = 1; r <= opt_rounds; r++) {
		u64 missing = 0, wrong = 0, first = 0, value = 0;
		int first_word = 0;

		run_round_all(&t, r);
		bitmap_zero(t.bmap, t.npages);
		kvm_vm_get_dirty_log(t.vm, TEST_SLOT, t.bmap);	/* re-protects */
		for (i = 0; i < n; i++) {
			u64 *p = addr_gpa2hva(t.vm, TEST_GPA + i * PG_SIZE);

			if (!test_bit(i, t.bmap))
				missing++;
			for (v = 0; v < RACE_VCPUS; v++) {
				if (p[v] == marker(i, r) + v || wrong++)
					continue;
				first = i;
				first_word = v;
				value = p[v];
			}
		}
		/* every page was written: the log is exact if none is missing */
		if (missing || wrong) {
			ksft_print_msg(RACE_ROUND_FMT, (unsigned long)r,
				       (unsigned long)missing, (unsigned long)wrong,
				       (unsigned long)first, first_word, (unsigned long)value);
			bad_rounds++;
		}
	}
	read_rs_stats(&t, &rs1);
	for (v = 0; v < RACE_VCPUS; v++)
		pf1 += kvmrs_vcpu_stat(t.vcpu[v], pf_fast);
	sync_global_from_guest(t.vm, guest_barrier_cut);
	test_vm_free(&t);
	ksft_print_msg("race: %lu of %lu barrier waits gave up after %d PAUSEs\n",
		       (unsigned long)guest_barrier_cut,
		       (unsigned long)(RACE_VCPUS *
				       (1 + opt_rounds * (opt_parallel ? n : 1))),
		       GUEST_BARRIER_SPINS);

	EXPECT_EQ(0, bad_rounds) TH_LOG("rounds with a wrong dirty log or a lost write");
	if (!rs0.valid || !rs1.valid || !rs1.c_off || !tdp || off) {
		ksft_print_msg("race: %d vCPUs x %lu pages x %u rounds: pf_fast +%lu; %s\n",
			       RACE_VCPUS, (unsigned long)n, opt_rounds,
			       (unsigned long)(pf1 - pf0),
			       !tdp || off ? "no TDP MMU fast path: races not counted" :
			       "no lost compare-exchange counters (stock modules or production build)");
		/* stock modules have no counters: the run checks the rest */
		if (opt_parallel && tdp && !off && rs1.valid)
			EXPECT_TRUE(false) TH_LOG("-P needs the test build's counters");
		return;
	}
	rs_delta(&rs0, &rs1, d);
	print_rs_delta(d);
	want_fixed = n * opt_rounds;
	ksft_print_msg(RACE_SUMMARY_FMT, RACE_VCPUS, (unsigned long)n, opt_rounds,
		       (unsigned long)(pf1 - pf0), mode,
		       (unsigned long)d[c ? RS_C_FIXED : RS_RUST_FIXED],
		       (unsigned long)want_fixed,
		       (unsigned long)d[c ? RS_C_SPURIOUS : RS_RUST_SPURIOUS],
		       (unsigned long)d[c ? RS_C_LOST : RS_RUST_LOST],
		       (unsigned long)d[c ? RS_C_BOUND : RS_RUST_BOUND]);
	/* one fix per page and round; every other fast outcome is spurious */
	EXPECT_EQ(want_fixed, d[c ? RS_C_FIXED : RS_RUST_FIXED]);
	EXPECT_EQ(pf1 - pf0, d[c ? RS_C_FIXED : RS_RUST_FIXED] +
			     d[c ? RS_C_SPURIOUS : RS_RUST_SPURIOUS]);
	/* a loser re-walks and finds the winner's fix: at most one loss each */
	EXPECT_LE(d[c ? RS_C_LOST : RS_RUST_LOST], d[c ? RS_C_SPURIOUS : RS_RUST_SPURIOUS]);
	EXPECT_EQ(0, d[c ? RS_C_BOUND : RS_RUST_BOUND]);
	EXPECT_EQ(0, d[c ? RS_RUST_LOST : RS_C_LOST])
		TH_LOG("the other implementation lost exchanges");
	if (opt_parallel) {
		EXPECT_LT(0, d[c ? RS_C_LOST : RS_RUST_LOST])
			TH_LOG("-P: no compare-exchange was lost, the fast paths never raced");
	}
}

/* ---- fast_pf_access.*.access -------------------------------------------------- */

/*
 * fast_pf_access: guest memory aged through kvmrs_age() (kvmrs_util.h): on
 * 7.3 the test process runs in a memory cgroup of its own, so that MGLRU
 * ages exactly its memory (lru_gen_do_aging() on that memcg), as
 * access_tracking_perf_test does, and the parent process removes the cgroup
 * after the test process is gone; on 6.12 idle page tracking marks the test
 * slot's pages idle.
 */
FIXTURE(fast_pf_access) {
	char mode[16];		/* kvm.tdp_fast_pf at setup; "stock" without it */
	bool tdp_mmu;
	struct kvmrs_ager ager;
};

FIXTURE_VARIANT(fast_pf_access) {
	bool dirty_log;		/* dirty logging on while aging and accessing */
	bool counters;		/* assert the fast path's counters */
};

/* every read returns the data last written */
FIXTURE_VARIANT_ADD(fast_pf_access, plain) {
	.dirty_log = false,
};

/* ... and each round's dirty log is exactly the pages it wrote */
FIXTURE_VARIANT_ADD(fast_pf_access, dirty_log) {
	.dirty_log = true,
};

/* ... and the fast path fixed every aged page; SKIP where aging never faults */
FIXTURE_VARIANT_ADD(fast_pf_access, counters) {
	.counters = true,
};

#define NO_FAULT_AMD_NPT "AMD NPT (kvm_amd): aging clears the NPT accessed bit, the next access sets it without a fault"
#define NO_FAULT_EPTAD "kvm_intel eptad=Y: aging clears the EPT accessed bit, the next access sets it without a fault"
#define NO_FAULT_SHADOW "tdp_mmu=N: aged SPTEs are counted with the TDP MMU's kvm_tdp_mmu_spte_changed event"

/*
 * Why aging does not make the next access fault, or NULL if it does.  KVM
 * ages an SPTE that has an accessed bit by clearing it, and the next access
 * sets it again in hardware without a fault (AMD NPT, Intel EPT with
 * eptad=Y).  Only without A/D bits (kvm_intel ept=Y eptad=N) does it
 * access-track the SPTE (mark_spte_for_access_track(): R/W/X cleared, R/X
 * saved in high bits), so that the next access faults and the fast path
 * restores it.
 */
static const char *aging_no_fault_reason(bool tdp_mmu)
{
	if (access("/sys/module/kvm_intel/parameters/eptad", R_OK)) {
		if (!access("/sys/module/kvm_amd", F_OK))
			return NO_FAULT_AMD_NPT;
		return "no kvm_intel eptad parameter: aging does not access-track SPTEs";
	}
	if (!get_kvm_intel_param_bool("ept"))
		return "kvm_intel ept=N: no TDP MMU";
	if (get_kvm_intel_param_bool("eptad"))
		return NO_FAULT_EPTAD;
	if (!tdp_mmu)
		return NO_FAULT_SHADOW;
	return NULL;
}

FIXTURE_SETUP(fast_pf_access)
{
	const char *why;
	int err;

	fast_pf_mode(self->mode, sizeof(self->mode));
	self->tdp_mmu = get_kvm_param_bool("tdp_mmu");
	ksft_print_msg("%lu pages, tdp_mmu=%c, tdp_fast_pf=%s\n",
		       (unsigned long)opt_npages, self->tdp_mmu ? 'Y' : 'N', self->mode);
	if (variant->counters) {
		why = aging_no_fault_reason(self->tdp_mmu);
		if (why)
			SKIP(return, "counters not checked: %s", why);
		if (!trace_aged_available())
			SKIP(return, "counters not checked: no %s, aged pages not countable",
			     TRACE_AGED_EN);
	}
	why = kvmrs_ager_unusable();
	if (why)
		SKIP(return, "%s: guest memory cannot be aged", why);
	err = kvmrs_ager_enter(&self->ager, "fast_pf_test");
	ASSERT_EQ(0, err) TH_LOG("cannot set up aging (memcg %s): %s", self->ager.name,
				 strerror(-err));
}

FIXTURE_TEARDOWN_PARENT(fast_pf_access)
{
	EXPECT_EQ(0, kvmrs_ager_destroy(&self->ager, false))
		TH_LOG("cannot remove cgroup %s: %s", self->ager.cg, strerror(errno));
}

/*
 * An SPTE access-tracked by 7.3's mark_spte_for_access_track() on EPT
 * without A/D bits: still shadow-present (SPTE_MMU_PRESENT_MASK, bit 11)
 * but without R, W and X (VMX_EPT_RWX_MASK, bits 2:0).  An SPTE aged by
 * clearing its accessed bit keeps its permissions (on NPT, bit 0 is
 * Present), so it is never one.
 */
static bool spte_access_tracked(u64 spte)
{
	return (spte & BIT_ULL(11)) && !(spte & 7);
}

struct access_count {
	u64 aged;		/* slot SPTEs the aging access-tracked */
	u64 aged_a;		/* slot SPTEs aged otherwise (accessed bit cleared) */
	long lru_pages;		/* pages aging could act on, last aging (kvmrs_age()) */
	bool lost;		/* the trace ring buffer overwrote events */
};

/*
 * Age the guest's memory (kvmrs_age()): on 7.3 one MGLRU aging pass with
 * force_scan on the test's memcg (lru_gen_do_aging()), on 6.12 the test
 * slot's pages marked idle.  Either clears the accessed state of the pages
 * it reaches, in the primary MMU and, through the clear_young MMU notifier,
 * in KVM's SPTEs.  Pages not on an LRU list yet (still in a per-CPU folio
 * batch) are not aged, so not every page is.  The TDP MMU's aging fires
 * kvmmmu:kvm_tdp_mmu_spte_changed for each SPTE it ages: @aged gets the
 * test slot's pages whose 4K SPTE it access-tracked.  Returns their number.
 */
static u64 age_memory(struct test_vm *t, struct kvmrs_ager *ager, unsigned long *aged,
		      struct access_count *ac)
{
	const u64 base = TEST_GPA / PG_SIZE;
	void *hva = addr_gpa2hva(t->vm, TEST_GPA);
	unsigned long long gfn, old, new;
	int as_id, level;
	char line[512];
	u64 nr = 0;
	char *ev;
	FILE *f;

	bitmap_zero(aged, t->npages);
	if (!trace_aged_available()) {
		ac->lru_pages = kvmrs_age(ager, hva, t->npages, PG_SIZE);
		return 0;
	}
	trace_start(TRACE_AGED_EN);
	ac->lru_pages = kvmrs_age(ager, hva, t->npages, PG_SIZE);
	f = trace_stop(TRACE_AGED_EN);
	while (fgets(line, sizeof(line), f)) {
		if (trace_line_lost(line))
			ac->lost = true;
		ev = strstr(line, "kvm_tdp_mmu_spte_changed: ");
		if (line[0] == '#' || !ev)
			continue;
		TEST_ASSERT(sscanf(ev,
				   "kvm_tdp_mmu_spte_changed: as id %d gfn %llx level %d old_spte %llx new_spte %llx",
				   &as_id, &gfn, &level, &old, &new) == 5,
			    "unexpected trace line: %s", line);
		if (as_id || level != PG_LEVEL_4K || gfn < base || gfn - base >= t->npages)
			continue;
		if (spte_access_tracked(new) && !spte_access_tracked(old)) {
			if (!test_bit(gfn - base, aged))
				nr++;
			set_bit(gfn - base, aged);
		} else {
			ac->aged_a++;
		}
	}
	fclose(f);
	ac->aged += nr;
	return nr;
}

/*
 * After an access round: @fixed gets the test slot's pages that have a
 * kvmmmu:fast_page_fault event with "fixed 1" (on TDP its address is the
 * GPA).  Returns the number of such events in any slot; *slot_events those
 * in the test slot.
 */
static u64 trace_fixed_pages(struct test_vm *t, unsigned long *fixed, u64 *slot_events,
			     bool *lost)
{
	unsigned long long gpa;
	u64 total = 0;
	char line[512];
	char *ev;
	FILE *f;

	bitmap_zero(fixed, t->npages);
	*slot_events = 0;
	f = trace_stop(TRACE_EVENT_EN);
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (trace_line_lost(line))
			*lost = true;
		if (line[0] == '#' || !strstr(line, "fast_page_fault:") ||
		    !strstr(line, " fixed 1"))
			continue;
		ev = strstr(line, " gva ");
		TEST_ASSERT(ev && sscanf(ev, " gva %llx", &gpa) == 1,
			    "unexpected trace line: %s", line);
		total++;
		if (gpa < TEST_GPA || (gpa - TEST_GPA) / PG_SIZE >= t->npages)
			continue;
		(*slot_events)++;
		set_bit((gpa - TEST_GPA) / PG_SIZE, fixed);
	}
	fclose(f);
	return total;
}

/*
 * The host's view after access round r: word 0 of every page holds its
 * last write, word 1 of the pages written first in round r this round's
 * marker.  Returns the number of pages that do not.
 */
static u64 check_access_memory(struct test_vm *t, u64 r)
{
	u64 i, bad = 0;

	for (i = 0; i < t->npages; i++) {
		u64 *p = addr_gpa2hva(t->vm, TEST_GPA + i * PG_SIZE);
		u64 want = marker(i, last_write_round(i, r));

		if (p[0] == want && (!access_write_first(i, r) || p[1] == marker(i, r)))
			continue;
		if (!bad++)
			ksft_print_msg("round %lu: page %lu holds %#lx %#lx, want %#lx%s\n",
				       (unsigned long)r, (unsigned long)i, (unsigned long)p[0],
				       (unsigned long)p[1], (unsigned long)want,
				       access_write_first(i, r) ? " and this round's marker" : "");
	}
	return bad;
}

/* Fetch (and re-protect) round r's dirty log: count its missing and extra pages. */
static void check_access_log(struct test_vm *t, u64 r, u64 *missing, u64 *extra)
{
	u64 i;

	bitmap_zero(t->bmap, t->npages);
	kvm_vm_get_dirty_log(t->vm, TEST_SLOT, t->bmap);
	*missing = *extra = 0;
	for (i = 0; i < t->npages; i++) {
		bool want = access_written(i, r), got = test_bit(i, t->bmap);

		*missing += want && !got;
		*extra += !want && got;
	}
}

#define ROUND_BAD_READS_FMT "round %lu: %lu guest reads wrong, first page %lu read %#lx, want %#lx\n"
#define ROUND_AGED_COUNTED_FMT "round %lu: of %lu pages, aging access-tracked %lu and cleared the accessed bit of %lu (aging reached %lu pages); %lu aged pages fixed in the fast path; pf_fast +%lu\n"
#define ROUND_AGED_FMT "round %lu: aged (aging reached %lu pages); pf_fast +%lu\n"
#define EXTRA_NOT_CHECKED_FMT "dirty log: %lu extra pages not checked: with tdp_fast_pf=off, read faults on aged pages take the slow path, which logs them dirty\n"
#define AGED_SUMMARY_FMT "aged: %lu access-tracked, %lu otherwise (accessed bit cleared); %lu fixed in the fast path, %lu not; \"fixed 1\" events %lu (test slot %lu)%s\n"

/*
 * Populate every page, then ACCESS_ROUNDS times: age the guest's memory
 * through MGLRU, and have the guest read every page and write the round's
 * pages (guest_access_code()).  Asserted:
 *
 *  - every guest read returned the data last written, and the host sees
 *    every page's last write after each round (all variants);
 *  - dirty_log: dirty logging is on throughout, and each round's dirty log
 *    is exactly the pages written in that round: none missing, and none
 *    extra (not checked where aging faults and tdp_fast_pf=off: the slow
 *    path logs an aged page dirty on a read, see below);
 *  - counters, only where aging access-tracks SPTEs (kvm_intel ept=Y
 *    eptad=N; see aging_no_fault_reason(), else SKIP).  "Aged" are the test
 *    slot's 4K pages whose SPTE an aging access-tracked, counted from
 *    kvm_tdp_mmu_spte_changed (MGLRU does not age pages that are not on its
 *    lists yet; those are not counted):
 *      . the aging access-tracked at least one page;
 *      . every aged page has a kvmmmu:fast_page_fault "fixed 1" event in
 *        the round that followed its aging (none with tdp_fast_pf=off);
 *      . the active implementation's kvm_rs fixed counter grew by at least
 *        the number of aged pages and by exactly the number of "fixed 1"
 *        events (all slots: the guest's own memory is aged too), the other
 *        implementation's not at all; with tdp_fast_pf=off, off_invalid
 *        grew by at least the number of aged pages;
 *      . pf_fast grew by exactly that implementation's fixed + spurious
 *        (0 with tdp_fast_pf=off; at least the aged pages with stock modules).
 *    At least, because each aged page takes one fix (a read restores the
 *    SPTE, a first write restores it and makes it writable) or two (read,
 *    then a W fix for the write), and the guest's own pages fault too.
 * plain and dirty_log print the counters without asserting them.
 */
TEST_F_TIMEOUT(fast_pf_access, access, FAST_PF_TIMEOUT)
{
	u64 n = opt_npages, r, i, pf0, pf1, pf_fast = 0, d[RS_NR], sum[RS_NR] = {};
	u64 bad_reads = 0, bad_memory = 0, missing = 0, extra = 0, m, e;
	u64 fixed_events = 0, slot_fixed = 0, aged_unfixed = 0, aged_fixed = 0, slot;
	u64 reaged_min = ~0ull;	/* fewest pages aged again in rounds 2.. */
	const char *mode = self->mode;
	bool off = self->tdp_mmu && !strcmp(mode, "off"), lost = false, rs_valid = true;
	/* kvm_tdp_mmu_spte_changed: only the TDP MMU's aging fires it */
	bool counted = trace_aged_available() && self->tdp_mmu;
	unsigned long *aged, *fixed;
	struct access_count ac = {};
	struct rs_stats rs0, rs1;
	struct test_vm t;

	__test_vm_create(&t, VM_MEM_SRC_ANONYMOUS, n, 1, guest_access_code);
	aged = bitmap_zalloc(n);
	fixed = bitmap_zalloc(n);
	TEST_ASSERT(aged && fixed, "bitmap_zalloc");
	run_round(&t, 0, 0);			/* populate: slow path */
	if (variant->dirty_log)
		enable_dirty_logging(&t);

	for (r = 1; r <= ACCESS_ROUNDS; r++) {
		u64 aged_a = ac.aged_a, round_unfixed = 0;
		u64 round_aged = age_memory(&t, &self->ager, aged, &ac);

		pf0 = kvmrs_vcpu_stat(t.vcpu[0], pf_fast);
		read_rs_stats(&t, &rs0);
		trace_begin();
		run_round(&t, r, 0);
		fixed_events += trace_fixed_pages(&t, fixed, &slot, &lost);
		slot_fixed += slot;
		read_rs_stats(&t, &rs1);
		pf1 = kvmrs_vcpu_stat(t.vcpu[0], pf_fast);
		pf_fast += pf1 - pf0;
		rs_valid &= rs0.valid && rs1.valid;
		rs_delta(&rs0, &rs1, d);
		for (i = 0; i < RS_NR; i++)
			sum[i] += d[i];

		sync_global_from_guest(t.vm, guest_bad_reads);
		sync_global_from_guest(t.vm, guest_first_bad_page);
		sync_global_from_guest(t.vm, guest_first_bad_value);
		if (guest_bad_reads) {
			i = guest_first_bad_page;
			ksft_print_msg(ROUND_BAD_READS_FMT,
				       (unsigned long)r, (unsigned long)guest_bad_reads,
				       (unsigned long)i, (unsigned long)guest_first_bad_value,
				       (unsigned long)marker(i, last_write_round(i, r - 1)));
		}
		bad_reads += guest_bad_reads;
		bad_memory += check_access_memory(&t, r);
		if (variant->dirty_log) {
			check_access_log(&t, r, &m, &e);
			ksft_print_msg("round %lu: dirty log %lu missing, %lu extra\n",
				       (unsigned long)r, (unsigned long)m, (unsigned long)e);
			missing += m;
			extra += e;
		}
		for (i = 0; i < n; i++)
			round_unfixed += test_bit(i, aged) && !test_bit(i, fixed);
		aged_unfixed += round_unfixed;
		aged_fixed += round_aged - round_unfixed;
		if (r > 1 && round_aged < reaged_min)
			reaged_min = round_aged;
		if (counted)
			ksft_print_msg(ROUND_AGED_COUNTED_FMT,
				       (unsigned long)r, (unsigned long)n,
				       (unsigned long)round_aged,
				       (unsigned long)(ac.aged_a - aged_a),
				       (unsigned long)ac.lru_pages,
				       (unsigned long)(round_aged - round_unfixed),
				       (unsigned long)(pf1 - pf0));
		else
			ksft_print_msg(ROUND_AGED_FMT,
				       (unsigned long)r, (unsigned long)ac.lru_pages,
				       (unsigned long)(pf1 - pf0));
	}
	test_vm_free(&t);
	free(aged);
	free(fixed);

	ksft_print_msg("%u rounds: %lu bad guest reads, %lu pages with bad memory\n", ACCESS_ROUNDS,
		       (unsigned long)bad_reads, (unsigned long)bad_memory);
	EXPECT_EQ(0, bad_reads) TH_LOG("guest reads that did not return the last write");
	EXPECT_EQ(0, bad_memory) TH_LOG("pages without their last write");
	if (variant->dirty_log) {
		EXPECT_EQ(0, missing) TH_LOG("written pages missing from the dirty log");
		/*
		 * The fast path restores an aged SPTE on a read without making
		 * it writable; the slow path (tdp_fast_pf=off) maps it writable
		 * and logs the page dirty (make_spte()), which the dirty log
		 * API allows.
		 */
		if (off && !aging_no_fault_reason(self->tdp_mmu))
			ksft_print_msg(EXTRA_NOT_CHECKED_FMT, (unsigned long)extra);
		else
			EXPECT_EQ(0, extra) TH_LOG("pages in the dirty log that were not written");
	}

	if (!counted)
		ksft_print_msg("aged SPTEs not counted (%s)\n",
			       self->tdp_mmu ? "no " TRACE_AGED_EN :
			       "tdp_mmu=N: kvm_tdp_mmu_spte_changed is the TDP MMU's");
	else
		ksft_print_msg(AGED_SUMMARY_FMT,
			       (unsigned long)ac.aged, (unsigned long)ac.aged_a,
			       (unsigned long)aged_fixed, (unsigned long)aged_unfixed,
			       (unsigned long)fixed_events, (unsigned long)slot_fixed,
			       lost || ac.lost ? ", EVENTS LOST" : "");
	ksft_print_msg("pf_fast +%lu\n", (unsigned long)pf_fast);
	if (rs_valid)
		print_rs_delta(sum);
	if (!variant->counters)
		return;

	EXPECT_FALSE(lost || ac.lost) TH_LOG("trace events lost: counts incomplete");
	EXPECT_LT(0, ac.aged) TH_LOG("aging access-tracked no SPTE of the test slot");
	if (off) {
		EXPECT_EQ(0, fixed_events) TH_LOG("fast path fixes with tdp_fast_pf=off");
		EXPECT_EQ(0, pf_fast);
	} else {
		EXPECT_EQ(0, aged_unfixed) TH_LOG("aged pages that the fast path did not fix");
		EXPECT_LE(ac.aged, slot_fixed);
	}
	/*
	 * The guest reads every page in every round, so the next aging must
	 * find nearly every page young again and access-track it: a fix that
	 * restored an SPTE without its accessed bit would leave the page
	 * looking idle (and aging would skip it).  MGLRU leaves the few pages
	 * of a per-CPU batch alone: allow 1/16.
	 */
	ksft_print_msg("pages aged again after being accessed: at least %lu of %lu per round\n",
		       (unsigned long)reaged_min, (unsigned long)n);
	EXPECT_LE(n - n / 16, reaged_min)
		TH_LOG("accessed pages not aged again: restored SPTEs left looking idle");
	if (!rs_valid) {
		ksft_print_msg("kvm_rs counters not checked (no %s: stock modules?)\n",
			       PARAM_MODE);
		EXPECT_LE(ac.aged, pf_fast);
	} else if (!rs1.c_off && (!strcmp(mode, "c") || off)) {
		/* a production build counts only the Rust path */
		ksft_print_msg("no c_* or off_* counters (production build): rust_* checked\n");
		if (off)
			EXPECT_EQ(0, pf_fast);
		if (!off)
			EXPECT_LE(ac.aged, pf_fast);
		EXPECT_EQ(0, sum[RS_RUST_FIXED]);
		EXPECT_EQ(0, sum[RS_RUST_SPURIOUS]);
	} else if (!strcmp(mode, "rust") || !strcmp(mode, "c")) {
		int f = !strcmp(mode, "c") ? RS_C_FIXED : RS_RUST_FIXED;
		int other = f == RS_C_FIXED ? RS_RUST_FIXED : RS_C_FIXED;

		EXPECT_LE(ac.aged, sum[f]) TH_LOG("kvm_rs %s below the aged pages", rs_keys[f]);
		EXPECT_EQ(fixed_events, sum[f])
			TH_LOG("kvm_rs %s against \"fixed 1\" events", rs_keys[f]);
		EXPECT_EQ(0, sum[other]) TH_LOG("kvm_rs %s moved", rs_keys[other]);
		EXPECT_EQ(sum[f] + sum[f + 1], pf_fast)
			TH_LOG("pf_fast against kvm_rs %s + %s", rs_keys[f], rs_keys[f + 1]);
	} else if (off) {
		EXPECT_LE(ac.aged, sum[RS_OFF_INVALID]);
		EXPECT_EQ(0, sum[RS_RUST_FIXED]);
		EXPECT_EQ(0, sum[RS_C_FIXED]);
	} else {
		TH_LOG("unknown kvm.tdp_fast_pf mode '%s'", mode);
		EXPECT_TRUE(false);
	}
}

/* ---- main ------------------------------------------------------------------ */

static pid_t main_pid, fork_parent;

/*
 * The harness runs each test in a child of a child, in a process group of
 * its own.  A runner that kills this process (tools/vm's per-test timeout)
 * must not leave a test with a live VM behind it: each child dies with its
 * parent.
 */
static void fork_prepare(void)
{
	fork_parent = getpid();
}

static void fork_child(void)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != fork_parent)
		_exit(KSFT_FAIL);
}

/*
 * test_harness_run() exits 0 when every test it ran was skipped; runners
 * read 4 (KSFT_SKIP) as "skipped", as for a test that calls ksft_exit_skip().
 */
static void exit_skip_if_all_skipped(void)
{
	if (getpid() != main_pid || !ksft_get_xskip_cnt() || ksft_get_pass_cnt() ||
	    ksft_get_fail_cnt() || ksft_get_xfail_cnt() || ksft_get_xpass_cnt() ||
	    ksft_get_error_cnt())
		return;
	fflush(stdout);
	fflush(stderr);
	_exit(KSFT_SKIP);
}

static void help(const char *name)
{
	printf("usage: %s [-n pages] [-i rounds] [-P] [harness options]\n"
	       "  -n  pages per memslot (default %lu, at least 64)\n"
	       "  -i  rounds of fast_pf.switch and fast_pf.race (default %u)\n"
	       "  -P  fast_pf.race: lockstep vCPUs; fail unless a compare-exchange was lost\n"
	       "harness options (-l lists the tests; e.g. -t 4k, -t access, -r fast_pf.switch):\n",
	       name, (unsigned long)opt_npages, opt_rounds);
}

#define R_NOT_ROUNDS_FMT "-r %s: -r runs a test by name; the switch rounds are -i\n"

/*
 * Take -n, -i and -P out of argv; the rest, in order, is for test_harness_run(),
 * which rejects options it does not know.  Returns the new argc.
 */
static int parse_args(int argc, char *argv[], char *hargv[], bool *list_only)
{
	/* ours (-n, -i, -P), then the harness's */
	static const char optstring[] = "n:i:Pdhlt:T:r:f:F:v:V:";
	int opt, hargc = 0;

	hargv[hargc++] = argv[0];
	while ((opt = getopt(argc, argv, optstring)) != -1) {
		char *flag;

		switch (opt) {
		case 'n':
			opt_npages = atoi_positive("Pages (-n)", optarg);
			continue;
		case 'i':
			opt_rounds = atoi_positive("Rounds (-i)", optarg);
			continue;
		case 'P':
			opt_parallel = true;
			continue;
		case 'r':
			if (optarg[0] >= '0' && optarg[0] <= '9') {
				help(argv[0]);
				ksft_exit_fail_msg(R_NOT_ROUNDS_FMT, optarg);
			}
			break;
		case 'h':
			help(argv[0]);
			fallthrough;
		case 'l':
			*list_only = true;
			break;
		case '?':
			help(argv[0]);
			exit(KSFT_FAIL);
		}
		flag = malloc(3);
		TEST_ASSERT(flag, "malloc");
		snprintf(flag, 3, "-%c", opt);
		hargv[hargc++] = flag;
		if (strchr(optstring, opt)[1] == ':')
			hargv[hargc++] = optarg;
	}
	while (optind < argc)
		hargv[hargc++] = argv[optind++];
	hargv[hargc] = NULL;
	optind = 1;
	return hargc;
}

int main(int argc, char *argv[])
{
	char **hargv = calloc(2 * argc + 1, sizeof(*hargv));
	bool list_only = false;
	int hargc;

	TEST_ASSERT(hargv, "calloc");
	hargc = parse_args(argc, argv, hargv, &list_only);
	TEST_ASSERT(opt_npages >= 64, "-n must be at least 64");
	if (!list_only)
		close(open_kvm_dev_path_or_exit());	/* else 1..0 # SKIP */

	main_pid = getpid();
	atexit(exit_skip_if_all_skipped);
	pthread_atfork(fork_prepare, NULL, fork_child);
	return test_harness_run(hargc, hargv);
}
