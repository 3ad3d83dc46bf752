// SPDX-License-Identifier: GPL-2.0

//! `kvm.tdp_fast_pf_diff`: the differential check of the Rust fast path
//! against KVM's C, inside the same RCU read section.
//!
//! Both sides compute, for the fault: the SPTE their walk ends at, the value
//! they read there, its level (the C's from `sptep_to_sp(sptep)->role.level`,
//! the Rust's from the walk's depth), the decision on that value and, for a
//! fix, the new SPTE. Every one of them is compared. A concurrent zap or fix
//! can change the tree between the two walks, so a difference in the walk
//! counts only if a fresh pair of walks reproduces it; the decision and the
//! new SPTE are compared on walks that agree, i.e. on the same input. The
//! decision the Rust path acted on is also checked against the C's decision
//! on that very snapshot (`acted`), so a re-walk never hides it, and how
//! often the fault marked the page dirty against the C's rule (`dirty`).
//! After the fault, the whole loop is checked ([`loop_check`]): the
//! decisions the Rust path took and which of its exchanges won are replayed
//! through the C loop of `fast_page_fault()` (`kvm_rs_c_fast_pf_loop()`),
//! and the RET_PF value (`ret`) and the retry count and bound (`retries`)
//! compared; a walk that found no SPTE must be one the C walk makes too
//! (`walk`). The fixes both sides agree on are counted by kind
//! ([`fix_kind`]), so that a run shows which branches of the decision it
//! checked. The MMIO walk, `kvm_tdp_mmu_get_walk()`, is checked in C
//! against the C walk (`get_walk`), since C calls it.

use crate::bindings::{self, kvm_rs_diff_side, kvm_rs_fast_pf};
use crate::fast_pf::{self, Decision};
use crate::rcu::RcuSection;
use crate::spte::{self, Masks};
use crate::tdp_mmu::{self, LastSpte, Root};
use crate::{RET_PF_FIXED, RET_PF_INVALID, RET_PF_SPURIOUS};
use kernel::ffi::c_int;

/// The Rust side of one check: `last` and the decision taken on it.
fn rust_side(last: &LastSpte<'_, RcuSection>, decision: &Decision) -> kvm_rs_diff_side {
    let (ret, new_spte) = match *decision {
        Decision::GiveUp => (RET_PF_INVALID, 0),
        Decision::Spurious => (RET_PF_SPURIOUS, 0),
        Decision::Fix(new_spte) => (RET_PF_FIXED, new_spte),
    };
    kvm_rs_diff_side {
        sptep: last.sptep().as_ptr(),
        spte: last.spte(),
        new_spte,
        // `LastSpte::level` is in 1..=5: the cast does not truncate.
        level: last.level() as c_int,
        ret,
        // Only `dirty_check()` and `loop_check()` fill in the rest.
        ..kvm_rs_diff_side::default()
    }
}

/// The C side of one check: `kvm_rs_c_fast_pf()`.
///
/// # Safety
///
/// - `pf` is the fault description the C passed to
///   `kvm_rs_tdp_fast_page_fault()`;
/// - the caller is inside an RCU read section (the C walk's contract).
unsafe fn c_side(pf: &kvm_rs_fast_pf) -> kvm_rs_diff_side {
    let mut c = kvm_rs_diff_side::default();
    // SAFETY: `kvm_rs_c_fast_pf()` requires (mmu/kvm_rs.h):
    // - `pf` is the C's fault description and the call is inside the RCU
    //   read section (this function's `# Safety`);
    // - `c` is valid for writes (a local).
    unsafe { bindings::kvm_rs_c_fast_pf(pf, &mut c) };
    c
}

/// The C's decision on the snapshot of `rust`, the one the Rust path acted
/// on: `kvm_rs_c_fast_pf_decide()`.
///
/// # Safety
///
/// `pf` is the fault description the C passed to
/// `kvm_rs_tdp_fast_page_fault()`.
unsafe fn c_decision_on(pf: &kvm_rs_fast_pf, rust: &kvm_rs_diff_side) -> kvm_rs_diff_side {
    let mut c = kvm_rs_diff_side {
        sptep: rust.sptep,
        spte: rust.spte,
        level: rust.level,
        ..kvm_rs_diff_side::default()
    };
    // SAFETY: `kvm_rs_c_fast_pf_decide()` requires (mmu/kvm_rs.h) `pf` to
    // be the C's fault description (this function's `# Safety`) and `c` to
    // be valid for reads and writes (a local); it follows no pointer of
    // `c`: it decides on the value and level in it.
    unsafe { bindings::kvm_rs_c_fast_pf_decide(pf, &mut c) };
    c
}

/// Check the dirty marking of one fast page fault against the C's rule:
/// `fix` is the old and new SPTE of the fix the Rust path applied, if it
/// fixed the fault, and `marks` how often it marked the page dirty. The C
/// side (`kvm_rs_c_fast_pf_dirty()`) says how often
/// `fast_pf_fix_direct_spte()` would have: once for W 0->1, else never, and
/// never without a fix.
///
/// # Safety
///
/// `pf` is the fault description the C passed to
/// `kvm_rs_tdp_fast_page_fault()`.
pub(crate) unsafe fn dirty_check(pf: &kvm_rs_fast_pf, fix: Option<(u64, u64)>, marks: u32) {
    let mut rust = kvm_rs_diff_side {
        dirty: c_int::try_from(marks).unwrap_or(c_int::MAX),
        ..kvm_rs_diff_side::default()
    };
    let mut c = kvm_rs_diff_side::default();
    if let Some((old, new)) = fix {
        rust.spte = old;
        rust.new_spte = new;
        rust.ret = RET_PF_FIXED;
        c = kvm_rs_diff_side { dirty: 0, ..rust };
        // SAFETY: `kvm_rs_c_fast_pf_dirty()` requires `c` to be valid for
        // reads and writes (a local); it only computes from its values.
        unsafe { bindings::kvm_rs_c_fast_pf_dirty(&mut c) };
    }
    if rust.dirty != c.dirty {
        report(pf.gfn, bindings::KVM_RS_DIFF_DIRTY, &rust, &c);
    }
}

/// Count one check (`what`, a `KVM_RS_DIFF_*`) or report one mismatch, with
/// both sides: `kvm_rs_diff_report()`.
fn report(gfn: u64, what: u32, rust: &kvm_rs_diff_side, c: &kvm_rs_diff_side) {
    // SAFETY: `kvm_rs_diff_report()` requires `rust` and `c` to be valid for
    // reads (references); it only counts and prints.
    unsafe { bindings::kvm_rs_diff_report(gfn, what as c_int, rust, c) }
}

/// The loop of one fast page fault, as the differential mode records it:
/// the decision on every walk's snapshot and the result of every
/// compare-exchange, in order.
#[derive(Default)]
pub(crate) struct LoopRecord {
    events: core::cell::Cell<bindings::kvm_rs_diff_loop>,
}

impl LoopRecord {
    /// A walk whose snapshot got `decision` (`RET_PF_*`), or that found no
    /// SPTE (`KVM_RS_DIFF_NO_SPTE`).
    pub(crate) fn walked(&self, decision: c_int) {
        let mut l = self.events.get();
        if let Some(d) = usize::try_from(l.walks)
            .ok()
            .and_then(|i| l.decision.get_mut(i))
        {
            *d = decision;
        }
        l.walks = l.walks.saturating_add(1);
        self.events.set(l);
    }

    /// The compare-exchange of the last walk's fix: `won` if it installed it.
    pub(crate) fn exchanged(&self, won: bool) {
        let mut l = self.events.get();
        let last = usize::try_from(l.walks.saturating_sub(1)).ok();
        if let Some(e) = last.and_then(|i| l.exchanged.get_mut(i)) {
            *e = won;
        }
        self.events.set(l);
    }
}

/// Check the loop of one fast page fault against `fast_page_fault()`'s: its
/// result `ret`, the compare-exchanges it counted lost (`retries`), whether
/// it hit the retry bound and how many walks it made, against what the C
/// loop does with the same walks and exchanges (`kvm_rs_c_fast_pf_loop()`).
/// A walk that found no SPTE (`walk_failed`) is checked against the C walk,
/// which must find none either.
///
/// # Safety
///
/// - `pf` is the fault description the C passed to
///   `kvm_rs_tdp_fast_page_fault()`;
/// - if `walk_failed`, the caller is inside an RCU read section (the C
///   walk's contract).
pub(crate) unsafe fn loop_check(
    pf: &kvm_rs_fast_pf,
    record: &LoopRecord,
    ret: c_int,
    retries: u32,
    bound_hit: bool,
    walk_failed: bool,
) {
    if walk_failed {
        // SAFETY: `pf` is the C's and the RCU read lock is held (this
        // function's `# Safety`).
        let c = unsafe { c_side(pf) };
        if !c.sptep.is_null() {
            let rust = kvm_rs_diff_side {
                ret: RET_PF_INVALID,
                ..kvm_rs_diff_side::default()
            };
            report(pf.gfn, bindings::KVM_RS_DIFF_WALK, &rust, &c);
        }
    }
    let events = record.events.get();
    let rust = kvm_rs_diff_side {
        ret,
        retries: c_int::try_from(retries).unwrap_or(c_int::MAX),
        bound: c_int::from(bound_hit),
        walks: events.walks,
        ..kvm_rs_diff_side::default()
    };
    let mut c = kvm_rs_diff_side::default();
    // SAFETY: `kvm_rs_c_fast_pf_loop()` requires `events` to be valid for
    // reads and `c` for writes (locals); it reads only the first
    // `min(walks, KVM_RS_DIFF_MAX_WALKS)` entries of `events`' arrays.
    unsafe { bindings::kvm_rs_c_fast_pf_loop(&events, &mut c) };
    if rust.ret != c.ret {
        report(pf.gfn, bindings::KVM_RS_DIFF_RET, &rust, &c);
    }
    if (rust.retries, rust.bound, rust.walks) != (c.retries, c.bound, c.walks) {
        report(pf.gfn, bindings::KVM_RS_DIFF_RETRIES, &rust, &c);
    }
    report(pf.gfn, bindings::KVM_RS_DIFF_FAULT_OK, &rust, &c);
}

/// Whether two walks agree: same SPTE, same value, same level.
fn walked_alike(rust: &kvm_rs_diff_side, c: &kvm_rs_diff_side) -> bool {
    (rust.sptep, rust.spte, rust.level) == (c.sptep, c.spte, c.level)
}

/// What the fix in `side` does, as the `KVM_RS_DIFF_*` kind to report:
/// restore an access-tracked SPTE (the branch of [`fast_pf::decide`] taken
/// only without A/D bits; a write fault also makes it writable, in the same
/// fix), or make a write-protected SPTE writable. `None` if `side` is not a
/// fix, or for a fix that does neither, which `decide` never returns.
fn fix_kind(masks: &Masks, side: &kvm_rs_diff_side) -> Option<u32> {
    if side.ret != RET_PF_FIXED {
        None
    } else if !masks.ad_enabled() && masks.is_access_track(side.spte) {
        Some(bindings::KVM_RS_DIFF_ACC_TRACK)
    } else if spte::is_writable(side.new_spte) && !spte::is_writable(side.spte) {
        Some(bindings::KVM_RS_DIFF_WRITE_PROTECT)
    } else {
        None
    }
}

/// Check one snapshot's walk and decision against KVM's C, and report the
/// result to C (counted in debugfs, each mismatch printed with both sides).
///
/// # Safety
///
/// - `pf` is the fault description the C passed to
///   `kvm_rs_tdp_fast_page_fault()`, and `section`, `masks` and `root` are
///   the ones the Rust fast path built from it;
/// - `last` was found in `section` (it borrows it) and `decision` is the
///   Rust decision on it.
#[inline(never)]
pub(crate) unsafe fn differential_check(
    pf: &kvm_rs_fast_pf,
    section: &RcuSection,
    masks: &Masks,
    root: &Root<'_>,
    last: &LastSpte<'_, RcuSection>,
    decision: &Decision,
) {
    let acted = rust_side(last, decision);
    // SAFETY: `pf` is the C's (this function's `# Safety`).
    let c_acted = unsafe { c_decision_on(pf, &acted) };
    let mut rust = acted;
    // SAFETY: `pf` is the C's, and `last` borrows `section`, so the RCU
    // read lock is held (this function's `# Safety`).
    let mut c = unsafe { c_side(pf) };
    if !walked_alike(&rust, &c) {
        // Only a difference that a fresh pair of walks reproduces counts.
        // The second walk cannot fail where the first succeeded (same root
        // and gfn); if it did, the first pair is compared as it is.
        if let Ok(again) = tdp_mmu::fast_pf_get_last_sptep(section, masks, root, pf.gfn) {
            let decision =
                fast_pf::decide(masks, &crate::fault_of(pf), again.spte(), again.level());
            rust = rust_side(&again, &decision);
            // SAFETY: as above; `again` borrows `section`.
            c = unsafe { c_side(pf) };
        }
    }
    let report_sides =
        |what: u32, rust: &kvm_rs_diff_side, c: &kvm_rs_diff_side| report(pf.gfn, what, rust, c);
    let report = |what: u32| report_sides(what, &rust, &c);
    // What the Rust path did with `last` is checked on `last` itself, even
    // where a re-walk is what the rest is compared on.
    if (acted.ret, acted.new_spte) != (c_acted.ret, c_acted.new_spte) {
        report_sides(bindings::KVM_RS_DIFF_ACTED, &acted, &c_acted);
    }
    if rust.sptep != c.sptep {
        report(bindings::KVM_RS_DIFF_WALK);
    }
    if rust.level != c.level {
        report(bindings::KVM_RS_DIFF_LEVEL);
    }
    if rust.spte != c.spte {
        report(bindings::KVM_RS_DIFF_SNAPSHOT);
    }
    // The decisions are comparable only on the same input.
    let mut agreed = None;
    if walked_alike(&rust, &c) {
        if rust.ret != c.ret {
            report(bindings::KVM_RS_DIFF_DECISION);
        } else if rust.new_spte != c.new_spte {
            report(bindings::KVM_RS_DIFF_NEW_SPTE);
        } else {
            agreed = fix_kind(masks, &rust);
        }
    }
    report(bindings::KVM_RS_DIFF_OK);
    if let Some(kind) = agreed {
        report(kind);
    }
}
