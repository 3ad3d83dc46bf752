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
 *           events with "fixed 1" (tracefs), and the kvm_rs counters
 *           (/sys/kernel/debug/kvm_rs/fast_pf_stats) of the active mode.
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
 *
 * Options of this test, taken out before the harness parses the rest:
 *   -n <pages>   pages per memslot (default 4096, at least 64)
 *   -i <rounds>  rounds of fast_pf.switch (default 40)
 * e.g. "fast_pf_test -t switch -n 2048 -i 30".  The harness's own -r runs a
 * test by full name, hence -i for the rounds (dirty_log_perf_test's letter
 * for iterations).
 *
 * Module interface (kvm-rs): /sys/module/kvm/parameters/tdp_fast_pf =
 * rust|c|off, /sys/kernel/debug/kvm_rs/fast_pf_stats ("key value" lines).
 * With stock modules those are absent: fast_pf.switch is skipped and the
 * kvm_rs counter checks are not made.  The fixtures save the module
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
				*(volatile u64 *)(TEST_GVA + i * PG_SIZE) = marker(i, r);
		GUEST_SYNC(r);
	}
}

/* ---- host helpers ------------------------------------------------------ */

static u64 opt_npages = 4096;
static u32 opt_rounds = 40;

enum { RS_RUST_FIXED, RS_RUST_SPURIOUS, RS_RUST_INVALID, RS_C_FIXED,
       RS_C_SPURIOUS, RS_C_INVALID, RS_OFF_INVALID, RS_NR };
static const char *const rs_keys[RS_NR] = {
	"rust_fixed", "rust_spurious", "rust_invalid", "c_fixed",
	"c_spurious", "c_invalid", "off_invalid",
};

struct rs_stats {
	bool valid;
	u64 v[RS_NR];
};

static void read_rs_stats(struct rs_stats *s)
{
	char line[256], key[128];
	unsigned long long val;
	int i, found = 0;
	FILE *f;

	memset(s, 0, sizeof(*s));
	f = fopen(KVMRS_STATS, "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%127s %llu", key, &val) != 2)
			continue;
		for (i = 0; i < RS_NR; i++) {
			if (!strcmp(key, rs_keys[i])) {
				s->v[i] = val;
				found++;
			}
		}
	}
	fclose(f);
	TEST_ASSERT(found == RS_NR, "%s has %d of the %d expected keys",
		    KVMRS_STATS, found, RS_NR);
	s->valid = true;
}

static void rs_delta(const struct rs_stats *a, const struct rs_stats *b, u64 *d)
{
	int i;

	for (i = 0; i < RS_NR; i++)
		d[i] = b->v[i] - a->v[i];
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

static void trace_begin(void)
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
	TEST_ASSERT(write_file_str(TRACE_EVENT_EN, "1"), "cannot enable kvmmmu:fast_page_fault");
	write_file_str(TRACEFS "/tracing_on", "1");
}

static void trace_end(struct trace_count *tc)
{
	char line[512];
	unsigned long in_buf, written;
	FILE *f;

	memset(tc, 0, sizeof(*tc));
	if (!trace_available())
		return;
	TEST_ASSERT(write_file_str(TRACE_EVENT_EN, "0"), "cannot disable kvmmmu:fast_page_fault");
	f = fopen(TRACEFS "/trace", "r");
	TEST_ASSERT(f, "cannot read " TRACEFS "/trace");
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "# entries-in-buffer/entries-written: %lu/%lu",
			   &in_buf, &written) == 2 && in_buf != written)
			tc->lost = true;
		if (line[0] == '#' || !strstr(line, "fast_page_fault:"))
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

/* ---- VM setup ---------------------------------------------------------- */

struct test_vm {
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu[2];
	int nr_vcpus;
	u64 npages;
	unsigned long *bmap;
};

static void test_vm_create(struct test_vm *t, enum vm_mem_backing_src_type src,
			   u64 npages, int nr_vcpus)
{
	u64 extra = npages / 256 + 64;	/* guest page tables for the mapping */

	memset(t, 0, sizeof(*t));
	t->npages = npages;
	t->nr_vcpus = nr_vcpus;
	t->vm = __vm_create_with_vcpus(VM_SHAPE_DEFAULT, nr_vcpus, extra,
				       guest_code, t->vcpu);
	vm_userspace_mem_region_add(t->vm, src, TEST_GPA, TEST_SLOT, npages, 0);
	virt_map(t->vm, TEST_GVA, TEST_GPA, npages);
	t->bmap = bitmap_zalloc(npages);
	TEST_ASSERT(t->bmap, "bitmap_zalloc");
	guest_npages = npages;
	sync_global_to_guest(t->vm, guest_npages);
}

static void test_vm_free(struct test_vm *t)
{
	kvm_vm_free(t->vm);
	free(t->bmap);
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
	case UCALL_ABORT:
		REPORT_GUEST_ASSERT(uc);
		break;
	default:
		TEST_FAIL("unexpected exit %s, ucall %lu",
			  exit_reason_str(vcpu->run->exit_reason), (unsigned long)uc.cmd);
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
		ksft_print_msg("round %lu: %lu of %lu written pages missing from the dirty log (first: page %lu)\n",
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
		ksft_print_msg("restoring kvm.eager_page_split=%c\n", self->saved_eager ? 'Y' : 'N');
		EXPECT_TRUE(write_file_str(PARAM_EAGER, self->saved_eager ? "Y" : "N"))
			TH_LOG("cannot restore %s", PARAM_EAGER);
	}
}

/* ---- fast_pf.4k -------------------------------------------------------------- */

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

	pf0 = vcpu_get_stat(t.vcpu[0], pf_fast);
	read_rs_stats(&rs0);
	trace_begin();
	run_round(&t, 1, 0);			/* every page: one WP fault */
	trace_end(&tc);
	read_rs_stats(&rs1);
	pf1 = vcpu_get_stat(t.vcpu[0], pf_fast);
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
		ksft_print_msg("4k: kvmmmu:fast_page_fault fixed=1 events %lu (want %lu; total %lu, spurious %lu%s)\n",
			       (unsigned long)tc.fixed, (unsigned long)want_fast,
			       (unsigned long)tc.total, (unsigned long)tc.spurious,
			       tc.lost ? ", EVENTS LOST" : "");
		EXPECT_FALSE(tc.lost);
		EXPECT_EQ(want_fast, tc.fixed);
	}

	if (!rs0.valid || !rs1.valid) {
		ksft_print_msg("4k: kvm_rs counters not checked (no %s: stock modules?)\n",
			       KVMRS_STATS);
		return;
	}
	rs_delta(&rs0, &rs1, d);
	print_rs_delta(d);
	if (!tdp) {
		/* shadow MMU: plain C, kvm_rs counters never move */
		for (i = 0; i < RS_NR; i++) {
			EXPECT_EQ(0, d[i]) TH_LOG("kvm_rs %s moved with tdp_mmu=N", rs_keys[i]);
		}
	} else if (!strcmp(mode, "rust")) {
		EXPECT_EQ(n, d[RS_RUST_FIXED]);
		EXPECT_EQ(0, d[RS_C_FIXED]);
		EXPECT_EQ(0, d[RS_OFF_INVALID]);
		EXPECT_EQ(0, d[RS_C_INVALID]);
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

TEST_F_TIMEOUT(fast_pf_huge, huge, FAST_PF_TIMEOUT)
{
	u64 n = (opt_npages + HPAGE_PAGES - 1) / HPAGE_PAGES * HPAGE_PAGES;
	u64 missing, extra, expected, tot_missing = 0, tot_extra = 0, huge, pf0, pf1, r;
	char eager = variant->eager_split ? 'Y' : 'N';
	struct test_vm t;

	test_vm_create(&t, VM_MEM_SRC_ANONYMOUS_THP, n, 1);
	run_round(&t, 0, 0);			/* populate: 2M mappings if THP */
	huge = vm_get_stat(t.vm, pages_2m);
	ksft_print_msg("huge: eager_page_split=%c, %lu pages, %lu 2M mappings after populate\n",
		       eager, (unsigned long)n, (unsigned long)huge);
	enable_dirty_logging(&t);

	pf0 = vcpu_get_stat(t.vcpu[0], pf_fast);
	/* several rounds of scattered writes, several pages per 2M region */
	for (r = 1; r <= 4; r++) {
		run_round(&t, r, 3);
		check_log(&t, r, 3, &missing, &extra, &expected);
		tot_missing += missing;
		tot_extra += extra;
	}
	pf1 = vcpu_get_stat(t.vcpu[0], pf_fast);
	ksft_print_msg("huge: pf_fast +%lu, 2M mappings now %lu, extra dirty pages %lu, missing %lu\n",
		       (unsigned long)(pf1 - pf0), (unsigned long)vm_get_stat(t.vm, pages_2m),
		       (unsigned long)tot_extra, (unsigned long)tot_missing);
	test_vm_free(&t);

	/* a written page missing from the log is a bug with or without THP */
	EXPECT_EQ(0, tot_missing)
		TH_LOG("eager_page_split=%c: written pages missing from the dirty log", eager);
	if (!huge && !tot_missing)
		SKIP(return, "eager_page_split=%c: no 2M mappings (THP unavailable?)", eager);
}

/* ---- fast_pf.switch ------------------------------------------------------------ */

static volatile bool switch_stop;
static unsigned long switch_count;

static void *switcher(void *arg)
{
	static const char *const modes[] = { "rust", "c", "off" };
	unsigned long i = 0;

	while (!switch_stop) {
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
	read_rs_stats(&rs0);

	switch_stop = false;
	pthread_create(&th, NULL, switcher, NULL);
	for (r = 1; r <= opt_rounds; r++) {
		run_round(&t, r, 2);
		check_log(&t, r, 2, &missing, &extra, &expected);
		written += expected;
		if (missing || extra) {
			ksft_print_msg("switch: round %lu: %lu missing, %lu extra\n",
				       (unsigned long)r, (unsigned long)missing, (unsigned long)extra);
			bad_rounds++;
		}
	}
	switch_stop = true;
	pthread_join(th, NULL);
	TEST_ASSERT(write_file_str(PARAM_MODE, self->mode), "restoring tdp_fast_pf=%s", self->mode);
	read_rs_stats(&rs1);
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
	struct vcpu_arg a[2];
	struct trace_count tc;
	struct rs_stats rs0, rs1;
	struct test_vm t;
	pthread_t th[2];
	int i;

	test_vm_create(&t, VM_MEM_SRC_ANONYMOUS, n, 2);
	guest_round = 0; guest_mod = 0; guest_first = 0; guest_stride = 1;
	sync_global_to_guest(t.vm, guest_round);
	sync_global_to_guest(t.vm, guest_mod);
	sync_global_to_guest(t.vm, guest_first);
	sync_global_to_guest(t.vm, guest_stride);
	vcpu_run_round(t.vcpu[0], 0);
	vcpu_run_round(t.vcpu[1], 0);
	enable_dirty_logging(&t);

	pf0 = vcpu_get_stat(t.vcpu[0], pf_fast) + vcpu_get_stat(t.vcpu[1], pf_fast);
	read_rs_stats(&rs0);
	trace_begin();
	guest_round = 1;
	sync_global_to_guest(t.vm, guest_round);
	for (i = 0; i < 2; i++) {
		a[i].vcpu = t.vcpu[i];
		a[i].r = 1;
		pthread_create(&th[i], NULL, vcpu_thread, &a[i]);
	}
	for (i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	trace_end(&tc);
	read_rs_stats(&rs1);
	pf1 = vcpu_get_stat(t.vcpu[0], pf_fast) + vcpu_get_stat(t.vcpu[1], pf_fast);
	check_log(&t, 1, 0, &missing, &extra, &expected);
	test_vm_free(&t);

	want_fixed = off ? 0 : n;
	ksft_print_msg("spurious: 2 vCPUs x %lu pages: pf_fast +%lu, trace total %lu fixed %lu (want %lu) spurious %lu, dirty log %lu missing %lu extra\n",
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
		if (!off) {
			EXPECT_EQ(tc.fixed + tc.spurious, pf1 - pf0);
		}
	}
	if (rs0.valid && rs1.valid) {
		u64 d[RS_NR];
		int f = !strcmp(mode, "c") ? RS_C_FIXED : RS_RUST_FIXED;

		rs_delta(&rs0, &rs1, d);
		print_rs_delta(d);
		/* the active implementation counts what the tracepoint shows */
		if (tdp && strcmp(mode, "off")) {
			EXPECT_EQ(n, d[f]) TH_LOG("kvm_rs %s", rs_keys[f]);
			if (tc.valid) {
				EXPECT_EQ(tc.spurious, d[f + 1]) TH_LOG("kvm_rs %s", rs_keys[f + 1]);
			}
		}
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
	printf("usage: %s [-n pages] [-i rounds] [harness options]\n"
	       "  -n  pages per memslot (default %lu, at least 64)\n"
	       "  -i  rounds of fast_pf.switch (default %u)\n"
	       "harness options (-l lists the tests; e.g. -t 4k, -r fast_pf.switch):\n",
	       name, (unsigned long)opt_npages, opt_rounds);
}

/*
 * Take -n and -i out of argv; the rest, in order, is for test_harness_run(),
 * which rejects options it does not know.  Returns the new argc.
 */
static int parse_args(int argc, char *argv[], char *hargv[], bool *list_only)
{
	/* ours (-n, -i), then the harness's */
	static const char optstring[] = "n:i:dhlt:T:r:f:F:v:V:";
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
		case 'r':
			if (optarg[0] >= '0' && optarg[0] <= '9') {
				help(argv[0]);
				ksft_exit_fail_msg("-r %s: -r runs a test by name; the switch rounds are -i\n",
						   optarg);
			}
			break;
		case 'h':
			help(argv[0]);
			/* fall through */
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
