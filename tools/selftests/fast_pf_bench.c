// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvm-rs fast page fault benchmark (scripts/bench.sh, `make bench`).
 *
 * Modelled on dirty_log_perf_test / lib/memstress.c, but measures what the
 * deterministic icount protocol needs (Documentation/kvm-rs/results.rst):
 * every vCPU thread times its own CPU time (CLOCK_THREAD_CPUTIME_ID) around
 * KVM_RUN for one dirty-memory pass.  Under QEMU -icount shift=0 that is the
 * number of emulated instructions the pass took (1 ns each), independent of
 * the scheduler tick that makes the stock "Iteration N dirty memory time"
 * move in 4 ms steps on a one-CPU guest.  The main thread sleeps on a
 * semaphore while the vCPUs run (no busy-waiting beside them).
 *
 * Iterations (-i N, N >= 2):
 *   1      populate: every vCPU writes every page of its region (slow path,
 *          no dirty logging yet)
 *   then   dirty logging is enabled (KVM_MEM_LOG_DIRTY_PAGES; with
 *          KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 but without INITIALLY_SET, so
 *          enabling write-protects every SPTE)
 *   2..N   every vCPU writes every page again (one write-protection fault per
 *          4K page, fixed by fast_page_fault), then the main thread gets the
 *          dirty log and clears it (re-protecting the pages).
 *
 * Access tracking (-a, the seed's "Writing to idle memory" of
 * access_tracking_perf_test): no dirty logging; the memory is aged as the
 * series' access_tracking_perf_test ages it (kvmrs_age(): on 7.3 the
 * process runs in a memory cgroup of its own and MGLRU ages it,
 * lru_gen_do_aging(); on 6.12 idle page tracking marks every page idle),
 * which ages KVM's SPTEs through the clear_young MMU notifier.  On Intel
 * EPT with eptad=0 an aged SPTE is access-tracked (R/W/X cleared) and the
 * next access to the page faults: the fast path restores it.  (With A/D
 * bits, AMD NPT or eptad=1, aging clears the accessed bit and the next
 * access faults not at all.)
 *   1      populate (phase=populate), then one untimed aging pass and a
 *          rewrite of every page (phase=repopulate: from then on every
 *          aging moves the pages to a newer generation), then a control
 *          pass over populated memory (phase=populated, "Writing to
 *          populated memory")
 *   2..N   age the memory, then every vCPU writes every page again
 *          (phase=idle, "Writing to idle memory")
 *
 * Checks (a failed check exits non-zero): the dirty log of every pass holds
 * exactly the pages of the test region; every page holds the marker of the
 * pass (the guest really wrote it); with 4K backing and partitioned vCPU
 * regions, pf_fast grew by exactly the number of pages in each pass (0 with
 * kvm.tdp_fast_pf=off on the TDP MMU), and the kvm_rs counters of the active
 * implementation agree when the module has them.  With -a: every page holds
 * the marker of every pass; the aging reached every page of the region
 * (7.3: on the memcg's MGLRU lists; 6.12: present); an idle pass took no
 * fast page fault with kvm.tdp_fast_pf=off on the TDP MMU.  No exact fault count is asserted
 * with -a (a page still in a per-CPU folio batch is not aged, and aging
 * also reaches the guest's page tables and code): pf_fast and the counters
 * are printed.
 *
 * Output, one machine-parsable line per item (all start "KVMRS-BENCH "):
 *   KVMRS-BENCH config vcpus= bytes= pages= iterations= overlap= backing=
 *               manual_protect= tdp_mmu= tdp_fast_pf=
 *   KVMRS-BENCH iter=<i> vcpu=<v> cpu_ns=<n> wall_ns=<n>
 *   KVMRS-BENCH iter=<i> phase=populate|dirty|repopulate|populated|idle
 *               cpu_ns=<sum> max_cpu_ns=<max>
 *               dirty=<pages in the log> pf_fast=<d> pf_taken=<d> pf_fixed=<d>
 *               pf_spurious=<d> pages_2m=<n> [lru_pages=<n>]
 *               [<kvm_rs key>=<delta> ...]
 *   KVMRS-BENCH result=pass
 * (pf_* are deltas of the vCPU stats over the pass, summed over vCPUs.)
 *
 * Options: -v vCPUs (1), -b bytes per vCPU (64M), -i iterations (3),
 * -o overlap (every vCPU writes the whole region, memstress -o), -s backing
 * (anonymous, anonymous_thp, ...), -g no manual protect (KVM_GET_DIRTY_LOG
 * clears), -a access tracking (see above), -q only the summary lines.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <linux/bitmap.h>

#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"
#include "ucall_common.h"

#include "kvmrs_util.h"

#define BENCH_SLOT	1
#define BENCH_GVA	0xc0000000ULL	/* as memstress: clear of the test code */
#define BENCH_MAX_VCPUS	64

/* ---- guest ------------------------------------------------------------- */

struct guest_vcpu_args {
	u64 gva;
	u64 pages;
};

static struct guest_vcpu_args guest_args[BENCH_MAX_VCPUS];
static u64 guest_iteration;
static u64 guest_page_size;

static inline u64 marker(u64 it)
{
	return 0xB0B0000000000000ULL | it;
}

static void guest_code(u32 vcpu_idx)
{
	for (;;) {
		u64 gva = READ_ONCE(guest_args[vcpu_idx].gva);
		u64 pages = READ_ONCE(guest_args[vcpu_idx].pages);
		u64 it = READ_ONCE(guest_iteration);
		u64 psz = READ_ONCE(guest_page_size);
		u64 i;

		for (i = 0; i < pages; i++)
			WRITE_ONCE(*(u64 *)(gva + i * psz), marker(it));
		GUEST_SYNC(it);
	}
}

/* ---- options and state ------------------------------------------------- */

static int nr_vcpus = 1;
static u64 vcpu_bytes = 64ULL << 20;
static int iterations = 3;
static bool overlap;
static bool manual_protect = true;
static bool quiet;
static bool access_mode;	/* -a */
static enum vm_mem_backing_src_type backing = VM_MEM_SRC_ANONYMOUS;

static struct kvm_vm *vm;
static struct kvm_vcpu *vcpus[BENCH_MAX_VCPUS];
static pthread_t threads[BENCH_MAX_VCPUS];
static sem_t go[BENCH_MAX_VCPUS];
static sem_t done;
static int vcpu_ids[BENCH_MAX_VCPUS];
static u64 region_pages;	/* pages in the test memslot */
static u64 region_gpa;

/*
 * Passes: every run of the vCPUs over their regions, 1-based.  Without -a
 * pass i is iteration i; with -a iteration 1 is three passes (populate,
 * repopulate, populated) and iteration i > 1 is pass i + 2.
 */
static int npasses;
static u64 (*cpu_ns)[BENCH_MAX_VCPUS];	/* per pass and vCPU */
static u64 (*wall_ns)[BENCH_MAX_VCPUS];

static u64 ts_ns(const struct timespec *t)
{
	return (u64)t->tv_sec * 1000000000ULL + (u64)t->tv_nsec;
}

static void *vcpu_thread(void *arg)
{
	int idx = *(int *)arg;
	struct kvm_vcpu *vcpu = vcpus[idx];
	struct timespec c0, c1, w0, w1;
	struct ucall uc;
	int it;

	for (it = 1; it <= npasses; it++) {
		while (sem_wait(&go[idx]) && errno == EINTR)
			;
		clock_gettime(CLOCK_MONOTONIC, &w0);
		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
		vcpu_run(vcpu);
		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
		clock_gettime(CLOCK_MONOTONIC, &w1);
		switch (get_ucall(vcpu, &uc)) {
		case UCALL_SYNC:
			TEST_ASSERT(uc.args[1] == (u64)it,
				    "vCPU %d synced pass %lu, expected %d",
				    idx, (unsigned long)uc.args[1], it);
			break;
		case UCALL_ABORT:
			REPORT_GUEST_ASSERT(uc);
			break;
		default:
			TEST_FAIL("vCPU %d: unexpected exit %s", idx,
				  exit_reason_str(vcpu->run->exit_reason));
		}
		cpu_ns[it][idx] = ts_ns(&c1) - ts_ns(&c0);
		wall_ns[it][idx] = ts_ns(&w1) - ts_ns(&w0);
		sem_post(&done);
	}
	return NULL;
}

/* ---- host helpers ---------------------------------------------------------- */

/*
 * kvm_rs counters: the Rust path's results from the vCPU stats (kvm.ko with
 * kvm.tdp_fast_pf), as rust_fixed, rust_spurious and rust_invalid, then the
 * other "key value" lines of KVMRS_STATS (test builds only), read leniently
 * (any keys).
 */
#define RS_MAX 32
struct rs_stats {
	int n;
	char key[RS_MAX][40];
	u64 val[RS_MAX];
};

static void rs_add(struct rs_stats *s, const char *key, u64 v)
{
	int i;

	for (i = 0; i < s->n; i++)
		if (!strcmp(s->key[i], key))
			return;
	if (s->n < RS_MAX) {
		snprintf(s->key[s->n], sizeof(s->key[0]), "%s", key);
		s->val[s->n++] = v;
	}
}

static void read_rs_stats(struct rs_stats *s)
{
	char line[256], key[40];
	unsigned long long v;
	u64 rust[3];
	FILE *f;

	s->n = 0;
	if (access(PARAM_MODE, F_OK))
		return;
	kvmrs_rust_stats(vcpus, nr_vcpus, rust);
	rs_add(s, "rust_fixed", rust[0]);
	rs_add(s, "rust_spurious", rust[1]);
	rs_add(s, "rust_invalid", rust[2]);
	f = fopen(KVMRS_STATS, "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%39s %llu", key, &v) == 2)
			rs_add(s, key, v);
	}
	fclose(f);
}

/* delta of one key, or -1 if either snapshot lacks it */
static long long rs_delta(const struct rs_stats *a, const struct rs_stats *b, const char *key)
{
	int i, j;

	for (i = 0; i < a->n; i++) {
		if (strcmp(a->key[i], key))
			continue;
		for (j = 0; j < b->n; j++)
			if (!strcmp(b->key[j], key))
				return (long long)(b->val[j] - a->val[i]);
	}
	return -1;
}

struct pf_stats {
	u64 fast, taken, fixed, spurious;
};

static void read_pf_stats(struct pf_stats *s)
{
	int i;

	memset(s, 0, sizeof(*s));
	for (i = 0; i < nr_vcpus; i++) {
		s->fast += kvmrs_vcpu_stat(vcpus[i], pf_fast);
		s->taken += kvmrs_vcpu_stat(vcpus[i], pf_taken);
		s->fixed += kvmrs_vcpu_stat(vcpus[i], pf_fixed);
		s->spurious += kvmrs_vcpu_stat(vcpus[i], pf_spurious);
	}
}

static u64 popcount_bitmap(const unsigned long *b, u64 nbits)
{
	u64 i, n = 0;

	for (i = 0; i < nbits; i++)
		n += (b[i / BITS_PER_LONG] >> (i % BITS_PER_LONG)) & 1;
	return n;
}

/* ---- VM ---------------------------------------------------------------------- */

static void create_vm(void)
{
	u64 total_pages = (u64)nr_vcpus * vcpu_bytes / getpagesize();
	u64 backing_pagesz = get_backing_src_pagesz(backing);
	u64 region_end_gfn;
	int i;

	TEST_ASSERT(vcpu_bytes % getpagesize() == 0, "-b must be a multiple of the page size");
	/* guest page tables for the mapping: one 4K table per 512 pages + slack */
	vm = __vm_create_with_vcpus(VM_SHAPE_DEFAULT, nr_vcpus, total_pages / 256 + 64,
				    guest_code, vcpus);
	guest_page_size = vm->page_size;
	TEST_ASSERT(guest_page_size == (u64)getpagesize(), "guest page size %lu",
		    (unsigned long)guest_page_size);
	region_pages = total_pages;

	/* the test region at the top of guest physical memory, as memstress */
	region_end_gfn = vm->max_gfn + 1;
	TEST_ASSERT(region_pages < region_end_gfn, "%lu pages do not fit below gfn %#lx",
		    (unsigned long)region_pages, (unsigned long)region_end_gfn);
	region_gpa = (region_end_gfn - region_pages - 1) * guest_page_size;
	region_gpa = align_down(region_gpa, backing_pagesz);
	vm_userspace_mem_region_add(vm, backing, region_gpa, BENCH_SLOT, region_pages, 0);
	virt_map(vm, BENCH_GVA, region_gpa, region_pages);

	for (i = 0; i < nr_vcpus; i++) {
		if (overlap) {
			guest_args[i].gva = BENCH_GVA;
			guest_args[i].pages = region_pages;
		} else {
			guest_args[i].gva = BENCH_GVA + (u64)i * vcpu_bytes;
			guest_args[i].pages = vcpu_bytes / guest_page_size;
		}
		vcpu_args_set(vcpus[i], 1, i);
	}
	sync_global_to_guest(vm, guest_args);
	sync_global_to_guest(vm, guest_page_size);

	if (manual_protect) {
		u64 caps = kvm_check_cap(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2);

		TEST_ASSERT(caps & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE,
			    "KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 unsupported (use -g)");
		/* no KVM_DIRTY_LOG_INITIALLY_SET: enabling logging write-protects */
		vm_enable_cap(vm, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
			      KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE);
	}
}

static u64 *page_hva0(u64 i)
{
	return addr_gpa2hva(vm, region_gpa + i * guest_page_size);
}

/* ---- access tracking (-a) ------------------------------------------------------ */

static struct kvmrs_ager ager;

/*
 * Set up aging (kvmrs_util.h) before the VM exists: on 7.3 this process
 * moves into a memory cgroup of its own, so that its guest memory is
 * charged there and MGLRU ages exactly it.
 */
static void aging_setup(void)
{
	const char *why = kvmrs_ager_unusable();
	int err;

	__TEST_REQUIRE(!why, "-a cannot age guest memory: %s", why);
	err = kvmrs_ager_enter(&ager, "fast_pf_bench");
	TEST_ASSERT(!err, "cannot set up aging (memcg %s): %s", ager.name, strerror(-err));
}

static void aging_teardown(void)
{
	TEST_ASSERT(!kvmrs_ager_destroy(&ager, true), "cannot remove cgroup %s: %s", ager.cg,
		    strerror(errno));
}

/* One aging pass over the region; returns the pages it could act on. */
static long age_memory(void)
{
	return kvmrs_age(&ager, page_hva0(0), region_pages, guest_page_size);
}

/* ---- main loop --------------------------------------------------------------- */

#define USAGE_FMT "usage: %s [-v vcpus] [-b bytes per vcpu] [-i iterations] [-o] [-s backing] [-g] [-a] [-q]\n"

static void help(const char *name)
{
	printf(USAGE_FMT
	       "  -v  vCPUs (default 1, at most %d)\n"
	       "  -b  bytes each vCPU writes, e.g. 64M (default 64M)\n"
	       "  -i  iterations incl. populate, >= 2 (default 3)\n"
	       "  -o  overlap: every vCPU writes the whole region (memstress -o)\n"
	       "  -g  no manual dirty-log protect: KVM_GET_DIRTY_LOG clears the log\n"
	       "  -a  access tracking: no dirty logging; age the memory (MGLRU on 7.3,\n"
	       "      idle page tracking on 6.12) before every iteration after the\n"
	       "      first (\"Writing to idle memory\")\n"
	       "  -q  summary lines only (no per-vCPU lines)\n",
	       name, BENCH_MAX_VCPUS);
	backing_src_help("-s");
}

struct pass_result {
	struct pf_stats p0, p1;
	struct rs_stats r0, r1;
	u64 sum, max;
};

/* the guest must rewrite every page: clear the markers (before any aging) */
static void clear_markers(void)
{
	for (u64 p = 0; p < region_pages; p++)
		*page_hva0(p) = 0;
}

/*
 * One pass: every vCPU writes every page of its region once with the
 * pass's marker; checks that every page holds it afterwards.
 */
static void run_pass(int pass, struct pass_result *res)
{
	u64 bad = 0, first_bad = 0;
	int i;

	guest_iteration = pass;
	sync_global_to_guest(vm, guest_iteration);

	read_pf_stats(&res->p0);
	read_rs_stats(&res->r0);
	for (i = 0; i < nr_vcpus; i++)
		sem_post(&go[i]);
	for (i = 0; i < nr_vcpus; i++)
		while (sem_wait(&done) && errno == EINTR)
			;
	read_rs_stats(&res->r1);
	read_pf_stats(&res->p1);

	res->sum = 0;
	res->max = 0;
	for (i = 0; i < nr_vcpus; i++) {
		res->sum += cpu_ns[pass][i];
		if (cpu_ns[pass][i] > res->max)
			res->max = cpu_ns[pass][i];
	}

	for (u64 p = 0; p < region_pages; p++) {
		if (*page_hva0(p) != marker(pass)) {
			if (!bad)
				first_bad = p;
			bad++;
		}
	}
	TEST_ASSERT(!bad, "pass %d: %lu pages lack the guest's marker (first: page %lu, %#lx)",
		    pass, (unsigned long)bad, (unsigned long)first_bad,
		    (unsigned long)*page_hva0(first_bad));
}

#define PASS_FMT "KVMRS-BENCH iter=%d phase=%s cpu_ns=%lu max_cpu_ns=%lu dirty=%lu pf_fast=%lu pf_taken=%lu pf_fixed=%lu pf_spurious=%lu pages_2m=%lu%s%s\n"

static void print_pass(int it, int pass, const char *phase, const struct pass_result *res,
		       u64 dirty, long lru_pages)
{
	char rsbuf[512] = "", lru[40] = "";
	int i, len = 0;

	for (i = 0; !quiet && i < nr_vcpus; i++)
		printf("KVMRS-BENCH iter=%d vcpu=%d cpu_ns=%lu wall_ns=%lu\n", it, i,
		       (unsigned long)cpu_ns[pass][i], (unsigned long)wall_ns[pass][i]);
	for (i = 0; i < res->r1.n; i++) {
		long long d = rs_delta(&res->r0, &res->r1, res->r1.key[i]);

		if (d > 0 && len < (int)sizeof(rsbuf) - 64)
			len += snprintf(rsbuf + len, sizeof(rsbuf) - len, " %s=%lld",
					res->r1.key[i], d);
	}
	if (lru_pages >= 0)
		snprintf(lru, sizeof(lru), " lru_pages=%ld", lru_pages);
	printf(PASS_FMT,
	       it, phase, (unsigned long)res->sum, (unsigned long)res->max,
	       (unsigned long)dirty, (unsigned long)(res->p1.fast - res->p0.fast),
	       (unsigned long)(res->p1.taken - res->p0.taken),
	       (unsigned long)(res->p1.fixed - res->p0.fixed),
	       (unsigned long)(res->p1.spurious - res->p0.spurious),
	       (unsigned long)kvmrs_vm_stat(vm, pages_2m), lru, rsbuf);
	fflush(stdout);
}

/* -a: populate, age + repopulate, control pass, then age + write per iteration */
static void run_access_tracking(bool tdp, const char *mode)
{
	struct pass_result res;
	long lru;
	int it, pass = 0;

	run_pass(++pass, &res);
	print_pass(1, pass, "populate", &res, 0, -1);

	/*
	 * As access_tracking_perf_test: after populating, aging may not move
	 * the pages to a newer generation; one aging pass and a rewrite make
	 * every later aging do so.
	 */
	clear_markers();
	lru = age_memory();
	TEST_ASSERT(lru >= (long)region_pages,
		    "aging reached %ld pages (memcg %s), the region has %lu: aging not set up?",
		    lru, ager.name, (unsigned long)region_pages);
	run_pass(++pass, &res);
	print_pass(1, pass, "repopulate", &res, 0, lru);
	clear_markers();
	run_pass(++pass, &res);
	print_pass(1, pass, "populated", &res, 0, -1);

	for (it = 2; it <= iterations; it++) {
		clear_markers();
		lru = age_memory();
		run_pass(++pass, &res);
		print_pass(it, pass, "idle", &res, 0, lru);
		if (tdp && !strcmp(mode, "off"))
			TEST_ASSERT(res.p1.fast == res.p0.fast,
				    "iteration %d: pf_fast +%lu with tdp_fast_pf=off", it,
				    (unsigned long)(res.p1.fast - res.p0.fast));
	}
}

/* dirty logging: populate, then dirty passes with the log checked */
static void run_dirty_log(bool tdp, const char *mode, bool strict, unsigned long *bmap)
{
	struct pass_result res;
	u64 dirty, want_fast;
	int it;

	for (it = 1; it <= iterations; it++) {
		dirty = 0;
		if (it == 2) {
			vm_mem_region_set_flags(vm, BENCH_SLOT, KVM_MEM_LOG_DIRTY_PAGES);
			/* nothing written since: the log must be empty */
			bitmap_zero(bmap, region_pages);
			kvm_vm_get_dirty_log(vm, BENCH_SLOT, bmap);
			dirty = popcount_bitmap(bmap, region_pages);
			TEST_ASSERT(dirty == 0,
				    "%lu pages dirty right after enabling dirty logging",
				    (unsigned long)dirty);
		}
		if (it > 1)
			clear_markers();
		run_pass(it, &res);
		if (it >= 2) {
			bitmap_zero(bmap, region_pages);
			kvm_vm_get_dirty_log(vm, BENCH_SLOT, bmap);
			dirty = popcount_bitmap(bmap, region_pages);
			if (manual_protect)
				kvm_vm_clear_dirty_log(vm, BENCH_SLOT, bmap, 0, region_pages);
		}
		print_pass(it, it, it == 1 ? "populate" : "dirty", &res, dirty, -1);

		if (it == 1)
			continue;
		TEST_ASSERT(dirty == region_pages,
			    "iteration %d: %lu pages in the dirty log, %lu written",
			    it, (unsigned long)dirty, (unsigned long)region_pages);
		want_fast = (tdp && !strcmp(mode, "off")) ? 0 : region_pages;
		if (strict) {
			TEST_ASSERT(res.p1.fast - res.p0.fast == want_fast,
				    "iteration %d: pf_fast +%lu, expected %lu (tdp_mmu=%c tdp_fast_pf=%s)",
				    it, (unsigned long)(res.p1.fast - res.p0.fast),
				    (unsigned long)want_fast, tdp ? 'Y' : 'N', mode);
			if (tdp && res.r0.n && res.r1.n) {
				const char *key = !strcmp(mode, "off") ? "off_invalid" :
						  !strcmp(mode, "c") ? "c_fixed" : "rust_fixed";
				long long d = rs_delta(&res.r0, &res.r1, key);

				TEST_ASSERT(d < 0 || (u64)d == region_pages,
					    "iteration %d: kvm_rs %s +%lld, expected %lu",
					    it, key, d, (unsigned long)region_pages);
			}
		} else {
			/* a write fault per page at most per writing vCPU (+ retries) */
			TEST_ASSERT(res.p1.fast - res.p0.fast <=
				    2 * region_pages * (overlap ? nr_vcpus : 1),
				    "iteration %d: pf_fast +%lu for %lu pages",
				    it, (unsigned long)(res.p1.fast - res.p0.fast),
				    (unsigned long)region_pages);
		}
	}
}

#define CONFIG_FMT "KVMRS-BENCH config vcpus=%d bytes=%lu pages=%lu iterations=%d overlap=%d backing=%s manual_protect=%d tracking=%s tdp_mmu=%c tdp_fast_pf=%s\n"

int main(int argc, char *argv[])
{
	char mode[64];
	unsigned long *bmap;
	bool tdp, strict;
	int opt, i;

	while ((opt = getopt(argc, argv, "v:b:i:os:gaqh")) != -1) {
		switch (opt) {
		case 'v':
			nr_vcpus = atoi_positive("Number of vCPUs", optarg);
			TEST_ASSERT(nr_vcpus <= BENCH_MAX_VCPUS, "at most %d vCPUs",
				    BENCH_MAX_VCPUS);
			break;
		case 'b':
			vcpu_bytes = parse_size(optarg);
			break;
		case 'i':
			iterations = atoi_positive("Number of iterations", optarg);
			break;
		case 'o':
			overlap = true;
			break;
		case 's':
			backing = parse_backing_src_type(optarg);
			break;
		case 'g':
			manual_protect = false;
			break;
		case 'a':
			access_mode = true;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			help(argv[0]);
			exit(0);
		default:
			help(argv[0]);
			exit(KSFT_FAIL);
		}
	}
	TEST_ASSERT(iterations >= 2, "-i must be at least 2 (populate + one measured pass)");
	TEST_REQUIRE(kvm_has_cap(KVM_CAP_SYNC_MMU));
	if (access_mode)
		manual_protect = false;	/* no dirty logging at all */

	npasses = access_mode ? iterations + 2 : iterations;
	cpu_ns = calloc(npasses + 1, sizeof(*cpu_ns));
	wall_ns = calloc(npasses + 1, sizeof(*wall_ns));
	TEST_ASSERT(cpu_ns && wall_ns, "calloc");

	fast_pf_mode(mode, sizeof(mode));
	tdp = get_kvm_param_bool("tdp_mmu");
	if (access_mode)
		aging_setup();
	create_vm();
	bmap = bitmap_zalloc(region_pages);
	TEST_ASSERT(bmap, "bitmap_zalloc");

	/*
	 * Exact pf_fast checks only where every page takes exactly one fast
	 * fault per pass: 4K backing (THP may leave a 2M SPTE whose fault
	 * goes to the slow path), partitioned regions (overlapping vCPUs
	 * may take spurious fast faults).
	 */
	strict = backing == VM_MEM_SRC_ANONYMOUS && (!overlap || nr_vcpus == 1);

	printf(CONFIG_FMT,
	       nr_vcpus, (unsigned long)vcpu_bytes, (unsigned long)region_pages, iterations,
	       overlap, vm_mem_backing_src_alias(backing)->name, manual_protect,
	       access_mode ? "access" : "dirty", tdp ? 'Y' : 'N', mode);
	fflush(stdout);

	TEST_ASSERT(!sem_init(&done, 0, 0), "sem_init");
	for (i = 0; i < nr_vcpus; i++) {
		TEST_ASSERT(!sem_init(&go[i], 0, 0), "sem_init");
		vcpu_ids[i] = i;
		TEST_ASSERT(!pthread_create(&threads[i], NULL, vcpu_thread, &vcpu_ids[i]),
			    "pthread_create");
	}

	if (access_mode)
		run_access_tracking(tdp, mode);
	else
		run_dirty_log(tdp, mode, strict, bmap);

	for (i = 0; i < nr_vcpus; i++)
		pthread_join(threads[i], NULL);
	if (!access_mode)
		vm_mem_region_set_flags(vm, BENCH_SLOT, 0);
	kvm_vm_free(vm);
	free(bmap);
	aging_teardown();
	printf("KVMRS-BENCH result=pass\n");
	return 0;
}
