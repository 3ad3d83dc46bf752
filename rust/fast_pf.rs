// SPDX-License-Identifier: GPL-2.0

//! The TDP MMU fast page fault: fix a write-protection or access-tracking
//! fault without the MMU lock, with one compare-exchange.
//!
//! Replaces, for the TDP MMU, the retry loop of `fast_page_fault()` and
//! `fast_pf_fix_direct_spte()` in `arch/x86/kvm/mmu/mmu.c` (Linux 7.3, or
//! 6.12 with `cfg(kvm_rs_6_12)`: the two decide differently whether an
//! access would still fault, see [`still_faults`], and what a restored
//! access-tracked SPTE holds, see [`Masks::restore_for_fix`]). The
//! argument for why a lockless fix is safe is the one of
//! `Documentation/virt/kvm/locking.rst` ("Fast page fault"); what enforces
//! each step here:
//!
//! - The SPTE pointer is valid only inside the read section
//!   ([`SptePtr`]'s lifetime).
//! - The new value is built only by the decision, from the walk's own
//!   snapshot, and is a leaf at the same level and address ([`Fix`]): safe
//!   code cannot store a value of its choice.
//! - The new value is derived from one snapshot and stored only if the SPTE
//!   still holds that snapshot (one full-barrier compare-exchange), so a
//!   concurrent zap, freeze ([`FROZEN_SPTE`](crate::spte::FROZEN_SPTE)) or
//!   fix makes the exchange fail and the walk restart.
//! - A frozen or zapped SPTE is not shadow-present: the decision gives up,
//!   so the fast path never writes over `FROZEN_SPTE`.
//! - The dirty bit in the memslot is set only by the CPU whose exchange made
//!   the SPTE writable (W 0 -> 1), exactly once per such transition.

use crate::spte::{self, Masks, PG_LEVEL_4K, PT_WRITABLE_MASK};
use crate::tdp_mmu::{self, LastSpte, Root, Section, SptePtr, WalkError};

/// `RET_PF_INVALID` and friends, as the fast path returns them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FastPfResult {
    /// `RET_PF_INVALID`: not fixed here, take the slow path.
    Invalid,
    /// `RET_PF_FIXED`: the SPTE was fixed by this CPU.
    Fixed,
    /// `RET_PF_SPURIOUS`: the access would not fault any more.
    Spurious,
}

/// What the fault asks for, from `struct kvm_page_fault`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Fault {
    /// The faulting gfn (`fault->gfn`).
    pub gfn: u64,
    /// `fault->write`.
    pub write: bool,
    /// 7.3: `mmu->fmt.permissions[pfec >> 1]` for the fault's error code.
    #[cfg(not(kvm_rs_6_12))]
    pub permissions: u16,
    /// 6.12: `fault->exec`.
    #[cfg(kvm_rs_6_12)]
    pub exec: bool,
    /// `kvm_slot_dirty_track_enabled(fault->slot)`: the slot logs dirty
    /// pages (or is write-tracked), so huge SPTEs must stay read-only.
    pub slot_dirty_tracked: bool,
}

/// The decision on one snapshot of the last-level SPTE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Give up: not present, not a leaf, not fixable here.
    GiveUp,
    /// The access is already allowed.
    Spurious,
    /// Fixable: this is the value to install. A plain value: only a
    /// [`Fix`], which [`plan`] builds from a walk, installs it.
    Fix(u64),
}

/// Would the faulting access still fault on the shadow-present `spte`?
///
/// 7.3: `spte_permission_fault()`, the MMU's permission table row for the
/// fault's error code against the access bits the SPTE grants.
#[cfg(not(kvm_rs_6_12))]
#[inline(always)]
pub fn still_faults(masks: &Masks, fault: &Fault, spte: u64) -> bool {
    masks.permission_fault(spte, fault.permissions)
}

/// Would the faulting access still fault on the shadow-present `spte`?
///
/// 6.12: `!is_access_allowed(fault, spte)`: a fetch needs an executable
/// SPTE, a write a writable one, a read a present one (`PT_PRESENT_MASK`).
#[cfg(kvm_rs_6_12)]
#[inline(always)]
pub fn still_faults(masks: &Masks, fault: &Fault, spte: u64) -> bool {
    let allowed = if fault.exec {
        masks.is_executable(spte)
    } else if fault.write {
        spte::is_writable(spte)
    } else {
        spte & spte::PT_PRESENT_MASK != 0
    };
    !allowed
}

/// The body of `fast_page_fault()`'s loop, for one snapshot `spte` of the
/// last SPTE of a walk, found at `level`.
#[inline(always)]
pub fn decide(masks: &Masks, fault: &Fault, spte: u64, level: u32) -> Decision {
    if !spte::is_shadow_present(spte) || !spte::is_last(spte, level) {
        return Decision::GiveUp;
    }
    if !still_faults(masks, fault, spte) {
        return Decision::Spurious;
    }
    let mut new_spte = spte;
    if !masks.ad_enabled() && masks.is_access_track(spte) {
        new_spte = masks.restore_for_fix(new_spte);
    }
    if fault.write && masks.is_mmu_writable(spte) {
        new_spte |= PT_WRITABLE_MASK;
        // Only the first 4K page of a huge SPTE would be marked dirty:
        // leave huge pages of a dirty-logged slot to the slow path, which
        // maps them at 4K.
        if level > PG_LEVEL_4K && fault.slot_dirty_tracked {
            return Decision::GiveUp;
        }
    }
    if new_spte == spte || still_faults(masks, fault, new_spte) {
        return Decision::GiveUp;
    }
    Decision::Fix(new_spte)
}

/// What the fast path does with the last SPTE of a walk: [`decide`] on the
/// walk's own snapshot, with the [`Fix`] to apply if it is fixable.
#[derive(Debug)]
pub enum Action<'s, S: Section> {
    /// Give up: not present, not a leaf, not fixable here.
    GiveUp,
    /// The access is already allowed.
    Spurious,
    /// Fixable: apply this fix.
    Fix(Fix<'s, S>),
}

impl<S: Section> Action<'_, S> {
    /// The decision this action carries out, as [`decide`] states it.
    #[inline(always)]
    pub fn decision(&self) -> Decision {
        match self {
            Action::GiveUp => Decision::GiveUp,
            Action::Spurious => Decision::Spurious,
            Action::Fix(fix) => Decision::Fix(fix.new),
        }
    }
}

/// A fix of one SPTE that only the decision can build: the SPTE a walk
/// ended at, the snapshot the walk read there, and the value [`decide`]
/// derived from that snapshot.
///
/// This is what makes the compare-exchange safe to offer: safe code cannot
/// choose the value stored, so it cannot plant a table pointer that a later
/// walk would follow, nor a leaf that maps other memory.
///
/// # Invariants
///
/// - `sptep` and `old` are a [`LastSpte`]'s pointer and snapshot (so `old`
///   is the value read at `sptep` in the table of the walk's level);
/// - `old` is a shadow-present leaf at that level, and `new` is
///   `decide()`'s `Decision::Fix` for it: it differs from `old` only in
///   `PT_WRITABLE_MASK`, the accessed bit and the access-tracking bits,
///   none of which is `PT_PAGE_SIZE_MASK`, `SPTE_MMU_PRESENT_MASK` or an
///   address bit (the invariant of [`Masks`]). So `new` is a shadow-present
///   leaf at the same level that maps the same page.
#[derive(Debug)]
pub struct Fix<'s, S: Section> {
    sptep: SptePtr<'s, S>,
    old: u64,
    new: u64,
}

impl<S: Section> Fix<'_, S> {
    /// `fast_pf_fix_direct_spte()`: compare-exchange the SPTE from the
    /// snapshot to the new value, and call `mark_dirty` if this exchange
    /// made the SPTE writable (W 0 -> 1). Returns whether the exchange
    /// happened.
    #[inline(always)]
    pub fn apply(self, mark_dirty: impl FnOnce()) -> bool {
        // SAFETY: `SptePtr::cmpxchg()` requires a value that is not
        // shadow-present or is a leaf at the SPTE's level with the address
        // bits of a leaf KVM installed there: by the type invariant, `new`
        // is a shadow-present leaf at the level of `sptep` with the address
        // bits of `old`, which the walk read there, and the exchange stores
        // it only if the SPTE still holds `old`.
        if unsafe { self.sptep.cmpxchg(self.old, self.new) }.is_err() {
            return false;
        }
        if spte::is_writable(self.new) && !spte::is_writable(self.old) {
            mark_dirty();
        }
        true
    }
}

/// [`decide`] on the snapshot of the walk result `last`, as an [`Action`].
#[inline(always)]
pub fn plan<'s, S: Section>(masks: &Masks, fault: &Fault, last: &LastSpte<'s, S>) -> Action<'s, S> {
    match decide(masks, fault, last.spte(), last.level()) {
        Decision::GiveUp => Action::GiveUp,
        Decision::Spurious => Action::Spurious,
        // INVARIANT: `sptep` and `old` are `last`'s; `decide()` returns a
        // fix only for a shadow-present leaf at `last.level()` and changes
        // only the writable, accessed and access-tracking bits of it.
        Decision::Fix(new) => Action::Fix(Fix {
            sptep: last.sptep(),
            old: last.spte(),
            new,
        }),
    }
}

/// How many times a lost compare-exchange is retried (the C's `retry_count`
/// bound: the fifth failure gives up).
pub const MAX_RETRIES: u32 = 4;

/// What the fast path did, for the caller's tracepoint and statistics.
///
/// It borrows the section (through [`LastSpte`]), so it cannot outlive it:
/// the tracepoint that reads `*sptep` must run before the section ends.
#[derive(Debug)]
pub struct Outcome<'s, S: Section> {
    /// The result to return to KVM.
    pub result: FastPfResult,
    /// The last walk's SPTE pointer and snapshot, or the walk error.
    pub last: Result<LastSpte<'s, S>, WalkError>,
    /// The retry bound was hit (the C warns once).
    pub retries_exhausted: bool,
    /// Compare-exchanges lost to another writer of the SPTE (the C's
    /// `retry_count`): each was retried, but the last one when the bound
    /// was hit (then this is `MAX_RETRIES + 1`).
    pub retries: u32,
}

/// The TDP MMU fast page fault loop: walk, decide, fix; re-walk and retry if
/// another CPU changed the SPTE between the walk and the exchange.
///
/// Everything happens inside the one read section `section`; the returned
/// [`Outcome`] borrows it, so the tracepoint that reads `*sptep` must run
/// before the section ends.
#[inline(always)]
pub fn fast_page_fault<'s, S: Section>(
    section: &'s S,
    masks: &Masks,
    root: &Root<'s>,
    fault: &Fault,
    mark_dirty: impl FnMut(),
) -> Outcome<'s, S> {
    fast_page_fault_observed(section, masks, root, fault, mark_dirty, |_, _| {}, |_| {})
}

/// [`fast_page_fault`], calling `observe` with every snapshot and the
/// decision taken on it, before acting on it, and `exchanged` with the
/// result of every compare-exchange (`true`: it installed the fix), after
/// it (the differential mode checks them against the C).
#[inline(always)]
pub fn fast_page_fault_observed<'s, S: Section>(
    section: &'s S,
    masks: &Masks,
    root: &Root<'s>,
    fault: &Fault,
    mut mark_dirty: impl FnMut(),
    mut observe: impl FnMut(&LastSpte<'s, S>, &Decision),
    mut exchanged: impl FnMut(bool),
) -> Outcome<'s, S> {
    let mut retries: u32 = 0;
    loop {
        let last = tdp_mmu::fast_pf_get_last_sptep(section, masks, root, fault.gfn);
        let walk = match last {
            Ok(walk) => walk,
            Err(_) => {
                return Outcome {
                    result: FastPfResult::Invalid,
                    last,
                    retries_exhausted: false,
                    retries,
                }
            }
        };
        let action = plan(masks, fault, &walk);
        observe(&walk, &action.decision());
        let result = match action {
            Action::GiveUp => FastPfResult::Invalid,
            Action::Spurious => FastPfResult::Spurious,
            Action::Fix(fix) => {
                let won = fix.apply(&mut mark_dirty);
                exchanged(won);
                if won {
                    FastPfResult::Fixed
                } else {
                    // `retries <= MAX_RETRIES` here (we return once it
                    // is above), so this does not wrap.
                    retries = retries.wrapping_add(1);
                    if retries <= MAX_RETRIES {
                        continue;
                    }
                    return Outcome {
                        result: FastPfResult::Invalid,
                        last,
                        retries_exhausted: true,
                        retries,
                    };
                }
            }
        };
        return Outcome {
            result,
            last,
            retries_exhausted: false,
            retries,
        };
    }
}
