// SPDX-License-Identifier: GPL-2.0

//! `kvm.tdp_fast_pf_diff`: the differential check of the Rust fast path
//! against KVM's C, on the same snapshot and inside the same RCU read
//! section.

use crate::bindings::{self, kvm_rs_fast_pf};
use crate::rcu::RcuSection;
use crate::spte::Masks;
use crate::tdp_mmu::{self, LastSpte, Root};
use crate::{fast_pf, RET_PF_FIXED, RET_PF_INVALID, RET_PF_SPURIOUS};
use kernel::ffi::c_int;

/// Check one snapshot's decision, and the walk that found it, against
/// KVM's C, and report the result to C (counted in debugfs, a mismatch
/// warned about once with both values).
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
    decision: &fast_pf::Decision,
) {
    let (rust_ret, rust_new) = match *decision {
        fast_pf::Decision::GiveUp => (RET_PF_INVALID, 0),
        fast_pf::Decision::Spurious => (RET_PF_SPURIOUS, 0),
        fast_pf::Decision::Fix(new_spte) => (RET_PF_FIXED, new_spte),
    };
    // `level` <= 5 (`LastSpte`), so the cast does not truncate.
    let level = last.level as c_int;
    let mut c_new = 0;
    // SAFETY: `kvm_rs_c_fast_pf_decide()` requires (include/kvm_rs.h):
    // - `pf` is the fault description the C passed to the entry point (it
    //   is, see `kvm_rs_tdp_fast_page_fault()`);
    // - the call is inside the RCU read section (`last` borrows `section`);
    // - `c_new` is a valid out pointer (a local).
    let c_ret = unsafe { bindings::kvm_rs_c_fast_pf_decide(pf, last.spte, level, &mut c_new) };
    let c_new = if c_ret == RET_PF_FIXED { c_new } else { 0 };
    let report = |what: u32, rust_ret: c_int, rust_val: u64, c_ret: c_int, c_val: u64| {
        // SAFETY: `pf` is the C's fault description, as above;
        // `kvm_rs_diff_report()` only counts and prints.
        unsafe {
            bindings::kvm_rs_diff_report(
                pf,
                what as c_int,
                last.spte,
                rust_ret,
                rust_val,
                c_ret,
                c_val,
            )
        }
    };
    if (rust_ret, rust_new) != (c_ret, c_new) {
        report(
            bindings::KVM_RS_DIFF_DECISION,
            rust_ret,
            rust_new,
            c_ret,
            c_new,
        );
    }
    let c_walk = || {
        let mut spte = 0;
        // SAFETY: `kvm_rs_c_fast_pf_walk()` requires `pf` to be the C's
        // fault description and the call to be inside the RCU read section,
        // as above; `spte` is a valid out pointer.
        unsafe { bindings::kvm_rs_c_fast_pf_walk(pf, &mut spte) }
    };
    if c_walk() != last.sptep.as_ptr() {
        // A zap between the two walks can legitimately move the last SPTE;
        // only a difference that a fresh pair of walks reproduces counts.
        if let Ok(again) = tdp_mmu::fast_pf_get_last_sptep(section, masks, root, pf.gfn) {
            let c_ptr = c_walk();
            if c_ptr != again.sptep.as_ptr() {
                report(
                    bindings::KVM_RS_DIFF_WALK,
                    0,
                    again.sptep.as_ptr() as u64,
                    0,
                    c_ptr as u64,
                );
            }
        }
    }
    report(bindings::KVM_RS_DIFF_OK, rust_ret, rust_new, c_ret, c_new);
}
