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
 * Checks (a failed check exits non-zero): the dirty log of every pass holds
 * exactly the pages of the test region; every page holds the marker of the
 * pass (the guest really wrote it); with 4K backing and partitioned vCPU
 * regions, pf_fast grew by exactly the number of pages in each pass (0 with
 * kvm.tdp_fast_pf=off on the TDP MMU), and the kvm_rs counters of the active
 * implementation agree when the module has them.
 *
 * Output, one machine-parsable line per item (all start "KVMRS-BENCH "):
 *   KVMRS-BENCH config vcpus= bytes= pages= iterations= overlap= backing=
 *               manual_protect= tdp_mmu= tdp_fast_pf=
 *   KVMRS-BENCH iter=<i> vcpu=<v> cpu_ns=<n> wall_ns=<n>
 *   KVMRS-BENCH iter=<i> phase=populate|dirty cpu_ns=<sum> max_cpu_ns=<max>
 *               dirty=<pages in the log> pf_fast=<d> pf_taken=<d> pf_fixed=<d>
 *               pf_spurious=<d> pages_2m=<n> [<kvm_rs key>=<delta> ...]
 *   KVMRS-BENCH result=pass
 * (pf_* are deltas of the vCPU stats over the pass, summed over vCPUs.)
 *
 * Options: -v vCPUs (1), -b bytes per vCPU (64M), -i iterations (3),
 * -o overlap (every vCPU writes the whole region, memstress -o), -s backing
 * (anonymous, anonymous_thp, ...), -g no manual protect (KVM_GET_DIRTY_LOG
 * clears), -q only the summary lines.
 */
#include <errno.h>
#include <fcntl.h>
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
			*(volatile u64 *)(gva + i * psz) = marker(it);
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
static enum vm_mem_backing_src_type backing = VM_MEM_SRC_ANONYMOUS;

static struct kvm_vm *vm;
static struct kvm_vcpu *vcpus[BENCH_MAX_VCPUS];
static pthread_t threads[BENCH_MAX_VCPUS];
static sem_t go[BENCH_MAX_VCPUS];
static sem_t done;
static int vcpu_ids[BENCH_MAX_VCPUS];
static u64 region_pages;	/* pages in the test memslot */
static u64 region_gpa;

/* per iteration (1-based) and vCPU */
static u64 (*cpu_ns)[BENCH_MAX_VCPUS];
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

	for (it = 1; it <= iterations; it++) {
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
				    "vCPU %d synced iteration %lu, expected %d",
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

/* kvm_rs counters: "key value" lines, read leniently (any keys). */
#define RS_MAX 32
struct rs_stats {
	int n;
	char key[RS_MAX][40];
	u64 val[RS_MAX];
};

static void read_rs_stats(struct rs_stats *s)
{
	char line[256], key[40];
	unsigned long long v;
	FILE *f;

	s->n = 0;
	f = fopen(KVMRS_STATS, "r");
	if (!f)
		return;
	while (s->n < RS_MAX && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%39s %llu", key, &v) != 2)
			continue;
		snprintf(s->key[s->n], sizeof(s->key[0]), "%s", key);
		s->val[s->n++] = v;
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
		s->fast += vcpu_get_stat(vcpus[i], pf_fast);
		s->taken += vcpu_get_stat(vcpus[i], pf_taken);
		s->fixed += vcpu_get_stat(vcpus[i], pf_fixed);
		s->spurious += vcpu_get_stat(vcpus[i], pf_spurious);
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

/* ---- main loop --------------------------------------------------------------- */

static void help(const char *name)
{
	printf("usage: %s [-v vcpus] [-b bytes per vcpu] [-i iterations] [-o] [-s backing] [-g] [-q]\n"
	       "  -v  vCPUs (default 1, at most %d)\n"
	       "  -b  bytes each vCPU writes, e.g. 64M (default 64M)\n"
	       "  -i  iterations incl. populate, >= 2 (default 3)\n"
	       "  -o  overlap: every vCPU writes the whole region (memstress -o)\n"
	       "  -g  no manual dirty-log protect: KVM_GET_DIRTY_LOG clears the log\n"
	       "  -q  summary lines only (no per-vCPU lines)\n",
	       name, BENCH_MAX_VCPUS);
	backing_src_help("-s");
}

int main(int argc, char *argv[])
{
	char mode[64];
	unsigned long *bmap;
	bool tdp, strict;
	int opt, i, it;

	while ((opt = getopt(argc, argv, "v:b:i:os:gqh")) != -1) {
		switch (opt) {
		case 'v':
			nr_vcpus = atoi_positive("Number of vCPUs", optarg);
			TEST_ASSERT(nr_vcpus <= BENCH_MAX_VCPUS, "at most %d vCPUs", BENCH_MAX_VCPUS);
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
	TEST_ASSERT(iterations >= 2, "-i must be at least 2 (populate + one dirty pass)");
	TEST_REQUIRE(kvm_has_cap(KVM_CAP_SYNC_MMU));

	cpu_ns = calloc(iterations + 1, sizeof(*cpu_ns));
	wall_ns = calloc(iterations + 1, sizeof(*wall_ns));
	TEST_ASSERT(cpu_ns && wall_ns, "calloc");

	fast_pf_mode(mode, sizeof(mode));
	tdp = get_kvm_param_bool("tdp_mmu");
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

	printf("KVMRS-BENCH config vcpus=%d bytes=%lu pages=%lu iterations=%d overlap=%d backing=%s manual_protect=%d tdp_mmu=%c tdp_fast_pf=%s\n",
	       nr_vcpus, (unsigned long)vcpu_bytes, (unsigned long)region_pages, iterations,
	       overlap, vm_mem_backing_src_alias(backing)->name, manual_protect,
	       tdp ? 'Y' : 'N', mode);
	fflush(stdout);

	TEST_ASSERT(!sem_init(&done, 0, 0), "sem_init");
	for (i = 0; i < nr_vcpus; i++) {
		TEST_ASSERT(!sem_init(&go[i], 0, 0), "sem_init");
		vcpu_ids[i] = i;
		TEST_ASSERT(!pthread_create(&threads[i], NULL, vcpu_thread, &vcpu_ids[i]),
			    "pthread_create");
	}

	for (it = 1; it <= iterations; it++) {
		struct pf_stats p0, p1;
		struct rs_stats r0, r1;
		u64 dirty = 0, sum = 0, max = 0, bad = 0, first_bad = 0, want_fast;
		char rsbuf[512] = "";
		int len = 0;

		if (it == 2) {
			vm_mem_region_set_flags(vm, BENCH_SLOT, KVM_MEM_LOG_DIRTY_PAGES);
			/* nothing written since: the log must be empty */
			bitmap_zero(bmap, region_pages);
			kvm_vm_get_dirty_log(vm, BENCH_SLOT, bmap);
			dirty = popcount_bitmap(bmap, region_pages);
			TEST_ASSERT(dirty == 0, "%lu pages dirty right after enabling dirty logging",
				    (unsigned long)dirty);
		}
		if (it >= 2) {
			/* the guest must rewrite every page: clear the markers */
			for (u64 p = 0; p < region_pages; p++)
				*page_hva0(p) = 0;
		}
		guest_iteration = it;
		sync_global_to_guest(vm, guest_iteration);

		read_pf_stats(&p0);
		read_rs_stats(&r0);
		for (i = 0; i < nr_vcpus; i++)
			sem_post(&go[i]);
		for (i = 0; i < nr_vcpus; i++)
			while (sem_wait(&done) && errno == EINTR)
				;
		read_rs_stats(&r1);
		read_pf_stats(&p1);

		for (i = 0; i < nr_vcpus; i++) {
			sum += cpu_ns[it][i];
			if (cpu_ns[it][i] > max)
				max = cpu_ns[it][i];
			if (!quiet)
				printf("KVMRS-BENCH iter=%d vcpu=%d cpu_ns=%lu wall_ns=%lu\n", it, i,
				       (unsigned long)cpu_ns[it][i], (unsigned long)wall_ns[it][i]);
		}

		for (u64 p = 0; p < region_pages; p++) {
			if (*page_hva0(p) != marker(it)) {
				if (!bad)
					first_bad = p;
				bad++;
			}
		}
		TEST_ASSERT(!bad, "iteration %d: %lu pages lack the guest's marker (first: page %lu, %#lx)",
			    it, (unsigned long)bad, (unsigned long)first_bad,
			    (unsigned long)*page_hva0(first_bad));

		if (it >= 2) {
			bitmap_zero(bmap, region_pages);
			kvm_vm_get_dirty_log(vm, BENCH_SLOT, bmap);
			dirty = popcount_bitmap(bmap, region_pages);
			if (manual_protect)
				kvm_vm_clear_dirty_log(vm, BENCH_SLOT, bmap, 0, region_pages);
		}

		for (i = 0; i < r1.n; i++) {
			long long d = rs_delta(&r0, &r1, r1.key[i]);

			if (d > 0 && len < (int)sizeof(rsbuf) - 64)
				len += snprintf(rsbuf + len, sizeof(rsbuf) - len, " %s=%lld",
						r1.key[i], d);
		}
		printf("KVMRS-BENCH iter=%d phase=%s cpu_ns=%lu max_cpu_ns=%lu dirty=%lu pf_fast=%lu pf_taken=%lu pf_fixed=%lu pf_spurious=%lu pages_2m=%lu%s\n",
		       it, it == 1 ? "populate" : "dirty", (unsigned long)sum, (unsigned long)max,
		       (unsigned long)dirty, (unsigned long)(p1.fast - p0.fast),
		       (unsigned long)(p1.taken - p0.taken), (unsigned long)(p1.fixed - p0.fixed),
		       (unsigned long)(p1.spurious - p0.spurious),
		       (unsigned long)vm_get_stat(vm, pages_2m), rsbuf);
		fflush(stdout);

		if (it == 1)
			continue;
		TEST_ASSERT(dirty == region_pages,
			    "iteration %d: %lu pages in the dirty log, %lu written",
			    it, (unsigned long)dirty, (unsigned long)region_pages);
		want_fast = (tdp && !strcmp(mode, "off")) ? 0 : region_pages;
		if (strict) {
			TEST_ASSERT(p1.fast - p0.fast == want_fast,
				    "iteration %d: pf_fast +%lu, expected %lu (tdp_mmu=%c tdp_fast_pf=%s)",
				    it, (unsigned long)(p1.fast - p0.fast), (unsigned long)want_fast,
				    tdp ? 'Y' : 'N', mode);
			if (tdp && r0.n && r1.n) {
				const char *key = !strcmp(mode, "off") ? "off_invalid" :
						  !strcmp(mode, "c") ? "c_fixed" : "rust_fixed";
				long long d = rs_delta(&r0, &r1, key);

				TEST_ASSERT(d < 0 || (u64)d == region_pages,
					    "iteration %d: kvm_rs %s +%lld, expected %lu",
					    it, key, d, (unsigned long)region_pages);
			}
		} else {
			/* a write fault per page at most per writing vCPU (+ retries) */
			TEST_ASSERT(p1.fast - p0.fast <= 2 * region_pages * (overlap ? nr_vcpus : 1),
				    "iteration %d: pf_fast +%lu for %lu pages",
				    it, (unsigned long)(p1.fast - p0.fast), (unsigned long)region_pages);
		}
	}

	for (i = 0; i < nr_vcpus; i++)
		pthread_join(threads[i], NULL);
	vm_mem_region_set_flags(vm, BENCH_SLOT, 0);
	kvm_vm_free(vm);
	free(bmap);
	printf("KVMRS-BENCH result=pass\n");
	return 0;
}
