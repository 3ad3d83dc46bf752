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

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kvm_util.h"

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
		sum[0] += vcpu_get_stat(vcpus[i], rust_fast_pf_fixed);
		sum[1] += vcpu_get_stat(vcpus[i], rust_fast_pf_spurious);
		sum[2] += vcpu_get_stat(vcpus[i], rust_fast_pf_invalid);
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
