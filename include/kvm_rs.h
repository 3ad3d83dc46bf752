/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kvm-rs: the contract between KVM's C and the Rust TDP MMU fast page fault
 * path linked into kvm.ko.
 *
 * This header is the whole FFI boundary. The C side includes it; the build
 * runs bindgen on it and the Rust entry points are checked against the
 * generated declarations, so a signature that drifts on either side fails
 * the build. Keep it to scalars, opaque pointers and the three structs below.
 */
#ifndef _KVM_RS_H
#define _KVM_RS_H

#include <linux/cache.h>
#include <linux/types.h>

/*
 * The kernel series whose KVM this header and the Rust follow, as
 * (version << 8 | patchlevel): their SPTE masks and fast page fault inputs
 * differ.  7.3 unless the series' Makefile says otherwise (the 6.12 one
 * passes -DKVM_RS_SERIES=0x060c to the C and to bindgen, and
 * cfg(kvm_rs_6_12) to rustc); the Rust checks at compile time that the two
 * agree.
 */
#ifndef KVM_RS_SERIES
#define KVM_RS_SERIES		0x0703
#endif
/* The same value, as bindgen sees it (it drops macros set with -D). */
enum { KVM_RS_SERIES_BUILT = KVM_RS_SERIES };

struct kvm;
struct kvm_vcpu;
struct kvm_page_fault;
struct kvm_memory_slot;

/* Values of the kvm.tdp_fast_pf module parameter. */
#define KVM_RS_FAST_PF_RUST	0
#define KVM_RS_FAST_PF_C	1
#define KVM_RS_FAST_PF_OFF	2
#define KVM_RS_FAST_PF_NR_IMPLS	3

/* Mirrors of enum RET_PF_* (static_assert()s in kvm_rs_internal.h). */
#define KVM_RS_RET_PF_INVALID	4
#define KVM_RS_RET_PF_FIXED	5
#define KVM_RS_RET_PF_SPURIOUS	6

/*
 * kvm.tdp_fast_pf_diff: what kvm_rs_diff_report() reports, and the field
 * debugfs kvm_rs/diff_inject_field corrupts in the C result.
 */
#define KVM_RS_DIFF_OK		0	/* one snapshot checked */
#define KVM_RS_DIFF_DECISION	1	/* different RET_PF_* on the same input */
#define KVM_RS_DIFF_WALK	2	/* the walks end at different SPTEs */
#define KVM_RS_DIFF_LEVEL	3	/* ... at different levels */
#define KVM_RS_DIFF_SNAPSHOT	4	/* ... having read different values */
#define KVM_RS_DIFF_NEW_SPTE	5	/* both fix, with different new SPTEs */
#define KVM_RS_DIFF_ACTED	6	/* either, on the snapshot Rust acted on */
#define KVM_RS_DIFF_DIRTY	7	/* marked dirty other than once per W 0->1 */
#define KVM_RS_DIFF_RET		8	/* the fault's RET_PF_* differs from the C loop's */
#define KVM_RS_DIFF_RETRIES	9	/* ... its lost exchanges, bound or walks */
#define KVM_RS_DIFF_GET_WALK	10	/* kvm_tdp_mmu_get_walk(): levels or SPTEs */
#define KVM_RS_DIFF_NR		11
/*
 * Also reported, after KVM_RS_DIFF_OK, for a fix on which both sides agreed
 * (same walk, decision and new SPTE), by what it fixes; counted apart.
 */
#define KVM_RS_DIFF_ACC_TRACK	11	/* restores an access-tracked SPTE */
#define KVM_RS_DIFF_WRITE_PROTECT 12	/* makes a write-protected SPTE writable */
/* Counted apart too: one fault's loop checked, one get_walk checked. */
#define KVM_RS_DIFF_FAULT_OK	13
#define KVM_RS_DIFF_GET_WALK_OK	14

/*
 * kvm.tdp_fast_pf_diff: what the loop of one fast page fault met, for
 * kvm_rs_c_fast_pf_loop(): for each walk, in order, the decision on its
 * snapshot (KVM_RS_RET_PF_*, or KVM_RS_DIFF_NO_SPTE if the walk found no
 * SPTE) and, for KVM_RS_RET_PF_FIXED, whether the compare-exchange installed
 * the fix.  Only the first KVM_RS_DIFF_MAX_WALKS of @walks are recorded.
 */
#define KVM_RS_DIFF_NO_SPTE	(-1)
#define KVM_RS_DIFF_MAX_WALKS	8

struct kvm_rs_diff_loop {
	int walks;
	int decision[KVM_RS_DIFF_MAX_WALKS];
	bool exchanged[KVM_RS_DIFF_MAX_WALKS];
};

/* Levels of a TDP root (PT64_ROOT_MAX_LEVEL) and get_walk's array size. */
#define KVM_RS_ROOT_MAX_LEVEL	5

/* A TDP MMU root, as the Rust walk needs it. */
struct kvm_rs_root {
	/* root->spt, or NULL if there is no valid root. */
	u64 *spt;
	/* kvm_gfn_root_bits(kvm, root) (6.12: no such bits, 0). */
	u64 gfn_bits;
	/* PAGE_OFFSET: __va(pa) == pa + page_offset. */
	u64 page_offset;
	/* SPTE_BASE_ADDR_MASK. */
	u64 base_addr_mask;
	/* root->role.level, 0 if there is no root. */
	int level;
};

/*
 * kvm.tdp_fast_pf_diff: what one side computes for a fault: the SPTE its walk
 * ends at, the value it read there, its level, the decision on that value
 * (KVM_RS_RET_PF_*) and, for KVM_RS_RET_PF_FIXED, the new SPTE (else 0);
 * for KVM_RS_DIFF_DIRTY, how often the fault marked the page dirty; for
 * KVM_RS_DIFF_RET and KVM_RS_DIFF_RETRIES, the fault's result in @ret, the
 * compare-exchanges it lost, whether it hit the retry bound and how many
 * walks it made; for KVM_RS_DIFF_GET_WALK, the walk's last level in @ret and
 * the first level whose SPTE differs (else the last) and that SPTE in
 * @level and @spte.
 */
struct kvm_rs_diff_side {
	u64 *sptep;
	u64 spte;
	u64 new_spte;
	int level;
	int ret;
	int dirty;
	int retries;
	int bound;
	int walks;
};

/* One TDP MMU fast page fault, filled by mmu.c before calling Rust. */
struct kvm_rs_fast_pf {
	/* Opaque: passed back to kvm_rs_trace_fast_page_fault(). */
	struct kvm_vcpu *vcpu;
	struct kvm_page_fault *fault;
	/* For mark_page_dirty_in_slot(). */
	struct kvm *kvm;
	const struct kvm_memory_slot *slot;
	struct kvm_rs_root root;
	u64 gfn;
#if KVM_RS_SERIES == 0x0703
	/* mmu->fmt.permissions[pfec >> 1] for the fault's error code. */
	u16 permissions;
#else
	/* fault->exec. */
	bool exec;
#endif
	bool write;
	/* fault->slot && kvm_slot_dirty_track_enabled(fault->slot). */
	bool slot_dirty_tracked;
	/* kvm.tdp_fast_pf_diff: check each decision and walk against the C. */
	bool differential;
};

/*
 * KVM's SPTE masks (arch/x86/kvm/mmu/spte.c), read by Rust on every fault
 * since the vendor module sets them after kvm.ko is loaded.
 */
extern u64 __read_mostly shadow_nx_mask;
extern u64 __read_mostly shadow_user_mask;
#if KVM_RS_SERIES == 0x0703
extern u64 __read_mostly shadow_xs_mask;
extern u64 __read_mostly shadow_xu_mask;
#else
/* 6.12 has no MBEC: one executable mask. */
extern u64 __read_mostly shadow_x_mask;
#endif
extern u64 __read_mostly shadow_mmu_writable_mask;
extern u64 __read_mostly shadow_acc_track_mask;
extern u64 __read_mostly shadow_accessed_mask;
#if KVM_RS_SERIES == 0x0703
extern bool __read_mostly kvm_ad_enabled;
#endif

/* --- Implemented in Rust (mmu/kvm_rs.rs) --- */

/*
 * The TDP MMU fast page fault: walk, decide, compare-exchange, retry, fire
 * the fast_page_fault tracepoint, all inside one RCU read-side critical
 * section that Rust takes. Returns KVM_RS_RET_PF_{INVALID,FIXED,SPURIOUS}.
 * Must be called for a direct TDP MMU root, without mmu_lock.
 */
int kvm_rs_tdp_fast_page_fault(const struct kvm_rs_fast_pf *pf);

/*
 * kvm_tdp_mmu_get_walk(): store the SPTE of each level visited for @gfn in
 * sptes[level] and return the last level, or -1 if no walk was possible.
 * Takes its own RCU read lock (callers may already hold one).
 */
int kvm_rs_tdp_get_walk(const struct kvm_rs_root *root, u64 gfn,
			u64 sptes[KVM_RS_ROOT_MAX_LEVEL + 1]);

/* Report the Rust side at kvm.ko load; returns 0. */
int kvm_rs_init(int impl);

/* --- Implemented in C, called from Rust --- */

/* trace_fast_page_fault(); must be called inside the RCU read section. */
void kvm_rs_trace_fast_page_fault(struct kvm_vcpu *vcpu,
				  struct kvm_page_fault *fault, u64 *sptep,
				  u64 old_spte, int ret);

/*
 * kvm.tdp_fast_pf_diff (differential mode), called inside the RCU read
 * section: the C side for the fault of @pf (the C walk
 * kvm_tdp_mmu_fast_pf_get_last_sptep(), the level of its sptep from
 * sptep_to_sp(), fast_pf_decide() on the snapshot it read), and the report
 * of one check (KVM_RS_DIFF_*, with both sides), counted in debugfs.
 */
void kvm_rs_c_fast_pf(const struct kvm_rs_fast_pf *pf,
		      struct kvm_rs_diff_side *c);
/*
 * fast_pf_decide() on the very snapshot @c->spte at @c->level that the Rust
 * path acted on, whatever a walk would find now: sets @c->ret and
 * @c->new_spte.
 */
void kvm_rs_c_fast_pf_decide(const struct kvm_rs_fast_pf *pf,
			     struct kvm_rs_diff_side *c);
/*
 * How often fast_pf_fix_direct_spte() marks the page dirty for the fix of
 * @c->spte into @c->new_spte (once if it makes the SPTE writable, else
 * never): sets @c->dirty.
 */
void kvm_rs_c_fast_pf_dirty(struct kvm_rs_diff_side *c);
/*
 * What fast_page_fault()'s loop returns, how many compare-exchanges it
 * counts lost and whether it hits the retry bound, when its walks and
 * exchanges meet those of @loop: sets @c->ret, @c->retries, @c->bound, and
 * in @c->walks the walks it makes (one more than recorded if it would walk
 * again).
 */
void kvm_rs_c_fast_pf_loop(const struct kvm_rs_diff_loop *loop,
			   struct kvm_rs_diff_side *c);
void kvm_rs_diff_report(u64 gfn, int what,
			const struct kvm_rs_diff_side *rust,
			const struct kvm_rs_diff_side *c);

/*
 * With CONFIG_KVM_RUST_FAST_PF_DIFF: count @lost compare-exchanges that one
 * fast page fault of implementation @impl (KVM_RS_FAST_PF_*) lost to another
 * writer of the SPTE, and whether it hit the retry bound (@lost > 4).
 */
void kvm_rs_count_lost_cmpxchg(int impl, u32 lost);

#if KVM_RS_SERIES == 0x060c
/*
 * What 6.12's kernel crate does not offer (mmu.c): rcu_read_lock() and
 * rcu_read_unlock(), and WARN_ON(1) for the Rust's warn-once sites.
 */
void kvm_rs_rcu_read_lock(void);
void kvm_rs_rcu_read_unlock(void);
void kvm_rs_warn(void);
#endif

/* virt/kvm/kvm_main.c */
void mark_page_dirty_in_slot(struct kvm *kvm,
			     const struct kvm_memory_slot *memslot, u64 gfn);

#endif /* _KVM_RS_H */
