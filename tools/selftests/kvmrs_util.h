/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * kvm-rs selftests: helpers shared by the project's tests for the sysfs
 * parameters and files of kvm-rs.  Boolean and integer kvm parameters are
 * read with the selftest library's get_kvm_param_bool() and
 * get_kvm_param_integer(); these cover what it has no helper for: the
 * string parameter tdp_fast_pf, debugfs/tracefs files, and writing.
 */
#ifndef KVMRS_UTIL_H
#define KVMRS_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"

/*
 * The selftest library differs between the supported series; this header is
 * the one place that knows.  tools/selftests/Makefile defines
 * KVMRS_SELFTEST_6_12 for a tree whose selftests live in x86_64/ (6.12).
 *
 * - Stats by name: 7.3's vm_get_stat() and vcpu_get_stat() take the name as
 *   a token; 6.12's vm_get_stat() takes a string and it has no
 *   vcpu_get_stat(), so kvmrs_vcpu_stat() reads the vCPU's stats fd.
 * - kvmrs_invlpg(): 7.3's processor.h has invlpg(), 6.12's does not.
 * - Aging guest memory (the clear_young MMU notifier on every page, which
 *   access-tracks SPTEs on EPT without A/D bits): on 7.3 an MGLRU aging
 *   pass over a memory cgroup of the test's own (lru_gen_util, cgroup_util,
 *   as 7.3's access_tracking_perf_test); on 6.12, whose MGLRU aging does
 *   not notify secondary MMUs, idle page tracking: every page of the region
 *   marked idle in /sys/kernel/mm/page_idle/bitmap (its rmap walk clears
 *   the young state through the notifier, as 6.12's
 *   access_tracking_perf_test does).
 */
#ifndef KVMRS_SELFTEST_6_12
#include "cgroup_util.h"
#include "lru_gen_util.h"

#define kvmrs_vm_stat(vm, name)		vm_get_stat(vm, name)
#define kvmrs_vcpu_stat(vcpu, name)	vcpu_get_stat(vcpu, name)
#define kvmrs_invlpg(addr)		invlpg(addr)
#else
#define kvmrs_vm_stat(vm, name)		vm_get_stat(vm, #name)
#define kvmrs_vcpu_stat(vcpu, name)	__kvmrs_vcpu_stat(vcpu, #name)

static inline u64 __kvmrs_vcpu_stat(struct kvm_vcpu *vcpu, const char *name)
{
	struct kvm_stats_header header;
	struct kvm_stats_desc *descs, *d;
	bool found = false;
	u64 data = 0;
	int fd, i;

	fd = vcpu_get_stats_fd(vcpu);
	read_stats_header(fd, &header);
	descs = read_stats_descriptors(fd, &header);
	for (i = 0; i < (int)header.num_desc; i++) {
		d = get_stats_descriptor(descs, i, &header);
		if (!strcmp(d->name, name)) {
			read_stat_data(fd, &header, d, &data, 1);
			found = true;
			break;
		}
	}
	free(descs);
	close(fd);
	TEST_ASSERT(found, "kvm.ko has no vCPU stat %s", name);
	return data;
}

static inline void kvmrs_invlpg(u64 addr)
{
	__asm__ __volatile__("invlpg (%0)" : : "r"(addr) : "memory");
}
#endif

#define KVMRS_PAGE_IDLE	"/sys/kernel/mm/page_idle/bitmap"

/* Guest memory aging, set up in the test process before its VM exists. */
struct kvmrs_ager {
	char name[64];		/* 7.3: the memcg's name, as debugfs lru_gen lists it */
	char root[PATH_MAX];	/* 7.3: the cgroup2 mount with the memory controller */
	char cg[PATH_MAX];	/* 7.3: the memcg's path; empty until created */
};

/* Why this kernel cannot age guest memory for the tests, or NULL. */
static inline const char *kvmrs_ager_unusable(void)
{
#ifndef KVMRS_SELFTEST_6_12
	char root[PATH_MAX];

	if (!lru_gen_usable())
		return "MGLRU (CONFIG_LRU_GEN, debugfs lru_gen) is not usable";
	if (cg_find_controller_root(root, sizeof(root), "memory"))
		return "no cgroup2 mount with the memory controller";
#else
	if (access(KVMRS_PAGE_IDLE, W_OK))
		return "no " KVMRS_PAGE_IDLE " (CONFIG_IDLE_PAGE_TRACKING)";
	if (access("/proc/self/pagemap", R_OK))
		return "no /proc/self/pagemap";
#endif
	return NULL;
}

/*
 * 7.3: create a memcg named <prefix>.<pid> and move this process into it,
 * so that the guest memory allocated after this is charged there.  6.12:
 * nothing to do.  Returns 0, or a negative errno with @a->cg empty.
 */
static inline int kvmrs_ager_enter(struct kvmrs_ager *a, const char *prefix)
{
#ifndef KVMRS_SELFTEST_6_12
	char *cg;
#endif

	memset(a, 0, sizeof(*a));
	snprintf(a->name, sizeof(a->name), "%s.%d", prefix, getpid());
#ifndef KVMRS_SELFTEST_6_12
	if (cg_find_controller_root(a->root, sizeof(a->root), "memory"))
		return -ENOENT;
	cg = cg_name(a->root, a->name);
	if (!cg)
		return -ENOMEM;
	if (cg_create(cg)) {
		free(cg);
		return errno ? -errno : -EIO;
	}
	if (cg_enter_current(cg)) {
		cg_destroy(cg);
		free(cg);
		return -EPERM;
	}
	snprintf(a->cg, sizeof(a->cg), "%s", cg);
	free(cg);
#endif
	return 0;
}

/*
 * Remove what kvmrs_ager_enter() made.  @leave: move this process back to
 * the cgroup root first (a memcg with a process in it cannot be removed;
 * without @leave the caller is another process, after the test process
 * exited).  Returns 0 or -1 with errno.
 */
static inline int kvmrs_ager_destroy(struct kvmrs_ager *a, bool leave)
{
#ifndef KVMRS_SELFTEST_6_12
	if (!a->cg[0])
		return 0;
	if (leave && cg_enter_current(a->root))
		return -1;
	if (cg_destroy(a->cg))
		return -1;
	a->cg[0] = 0;
#endif
	return 0;
}

/*
 * Age @npages pages of @page_size bytes from @hva (one memslot: contiguous
 * host memory).  Returns the pages aging could act on: 7.3, the memcg's
 * pages on MGLRU lists; 6.12, the host pages marked idle (those present).
 */
static inline long kvmrs_age(struct kvmrs_ager *a, void *hva, u64 npages, u64 page_size)
{
#ifndef KVMRS_SELFTEST_6_12
	struct memcg_stats stats;

	(void)hva;
	(void)npages;
	(void)page_size;
	lru_gen_do_aging(&stats, a->name);
	return lru_gen_sum_memcg_stats(&stats);
#else
	const u64 host_page = getpagesize();
	u64 va = (u64)hva, end = va + npages * page_size;
	int pagemap, idle;
	long marked = 0;
	u64 entry, pfn, bits;
	ssize_t n;

	(void)a;
	pagemap = open("/proc/self/pagemap", O_RDONLY);
	TEST_ASSERT(pagemap >= 0, "open /proc/self/pagemap: %s", strerror(errno));
	idle = open(KVMRS_PAGE_IDLE, O_WRONLY);
	TEST_ASSERT(idle >= 0, "open " KVMRS_PAGE_IDLE ": %s", strerror(errno));
	for (; va < end; va += host_page) {
		n = pread(pagemap, &entry, sizeof(entry), va / host_page * 8);
		TEST_ASSERT(n == 8, "pread /proc/self/pagemap at %lx: %s", (unsigned long)va,
			    strerror(errno));
		pfn = entry & ((1ULL << 55) - 1);
		if (!(entry & (1ULL << 63)) || !pfn)
			continue;	/* not present (or no CAP_SYS_ADMIN: pfn 0) */
		bits = 1ULL << (pfn % 64);
		/*
		 * A 0 bit changes nothing: one page per write.  The kernel
		 * (page_idle_bitmap_write()) returns the bytes of whole
		 * chunks it got through: 8, or 0 for the last chunk below
		 * max_pfn, where it stops early after marking the pages
		 * that exist (this one is present, so it is below max_pfn).
		 */
		n = pwrite(idle, &bits, sizeof(bits), pfn / 64 * 8);
		TEST_ASSERT(n == 8 || n == 0, "pwrite " KVMRS_PAGE_IDLE " for pfn %lx: %s",
			    (unsigned long)pfn, n < 0 ? strerror(errno) : "short write");
		marked++;
	}
	close(idle);
	close(pagemap);
	return marked;
#endif
}

#define PARAM_MODE	"/sys/module/kvm/parameters/tdp_fast_pf"
#define KVMRS_STATS	"/sys/kernel/debug/kvm_rs/fast_pf_stats"

/*
 * The Rust path's results, the vCPU stats rust_fast_pf_fixed, _spurious and
 * _invalid, summed over the @n vCPUs of @vcpus into @sum (in that order).
 * Only kvm.ko with kvm.tdp_fast_pf (PARAM_MODE) has them.
 */
static inline void kvmrs_rust_stats(struct kvm_vcpu *const *vcpus, int n,
				    u64 sum[3])
{
	int i;

	memset(sum, 0, 3 * sizeof(*sum));
	for (i = 0; i < n; i++) {
		sum[0] += kvmrs_vcpu_stat(vcpus[i], rust_fast_pf_fixed);
		sum[1] += kvmrs_vcpu_stat(vcpus[i], rust_fast_pf_spurious);
		sum[2] += kvmrs_vcpu_stat(vcpus[i], rust_fast_pf_invalid);
	}
}

/* Read a small sysfs/debugfs file into @buf, without trailing blanks. */
static inline bool read_file_str(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return false;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return false;
	buf[n] = 0;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = 0;
	return true;
}

static inline bool write_file_str(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return false;
	n = write(fd, val, strlen(val));
	close(fd);
	return n == (ssize_t)strlen(val);
}

/*
 * The active kvm.tdp_fast_pf, "rust", "c" or "off", in @buf; "stock" when
 * kvm.ko has no such parameter. Returns @buf.
 */
static inline const char *fast_pf_mode(char *buf, size_t len)
{
	char *b, *e;

	if (!read_file_str(PARAM_MODE, buf, len)) {
		snprintf(buf, len, "stock");
		return buf;
	}
	/* tolerate an enum-style "[rust] c off" rendering */
	b = strchr(buf, '[');
	e = b ? strchr(b, ']') : NULL;
	if (b && e) {
		*e = 0;
		memmove(buf, b + 1, strlen(b + 1) + 1);
	}
	return buf;
}

#endif /* KVMRS_UTIL_H */
