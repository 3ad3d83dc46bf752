//! Workloads shared by `benches/walk.rs` (criterion, time) and
//! `examples/instr.rs` (callgrind, instructions).
#![allow(dead_code)]

use core::sync::atomic::{AtomicU64, Ordering};
use kvm_rs_host::fast_pf::{self, FastPfResult, Fault};
use kvm_rs_host::spte::{self, Masks};
use kvm_rs_host::testing::{npt_masks, write_fault, Tables, BASE_ADDR_MASK};
use std::hint::black_box;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Case {
    /// Write fault on a dirty-logged 4K SPTE: walk, decide, cmpxchg (+ the
    /// store that re-arms the SPTE before each fault).
    Fixable,
    /// Write fault on an already writable SPTE: walk, decide.
    Spurious,
    /// Non-present 4K SPTE: full walk, give up.
    NonPresent,
}

pub const CASES: [Case; 3] = [Case::Fixable, Case::Spurious, Case::NonPresent];

/// NPT leaf: MMU-present, P, MMU-writable (bit 10), host-writable, user, A.
pub const WP: u64 = (1 << 11) | 1 | (1 << 10) | (1 << 9) | (1 << 2) | (1 << 5) | 0x12_3000;
pub const GFN: u64 = 0x1_2345_6789 & ((1 << 36) - 1);

pub struct Setup {
    pub tables: Tables,
    pub masks: Masks,
    pub fault: Fault,
    pub slot: *mut u64,
    pub arm: u64,
    pub case: Case,
    pub level: u32,
}

pub fn setup(level: u32, case: Case) -> Setup {
    let mut tables = Tables::new(level);
    let arm = match case {
        Case::Fixable => WP,
        Case::Spurious => WP | 2,
        Case::NonPresent => spte::SHADOW_NONPRESENT_VALUE,
    };
    tables.set_raw(GFN, 1, arm);
    let slot = tables.slot_ptr(GFN, 1);
    let fault = write_fault(GFN, true);
    Setup {
        tables,
        masks: npt_masks(),
        fault,
        slot,
        arm,
        case,
        level,
    }
}

fn slot(p: *mut u64) -> &'static AtomicU64 {
    // SAFETY: benchmark tables outlive every use.
    unsafe { AtomicU64::from_ptr(p) }
}

/// One fault through the real code. Returns the result.
#[inline(never)]
pub fn one_fault(s: &Setup, dirty: &mut u64) -> FastPfResult {
    if s.case == Case::Fixable {
        slot(s.slot).store(s.arm, Ordering::Relaxed);
    }
    let section = s.tables.section();
    let out = fast_pf::fast_page_fault(
        &section,
        black_box(&s.masks),
        black_box(&s.tables.root()),
        black_box(&s.fault),
        || *dirty += 1,
    );
    out.result
}

/// The floor: the same number of dependent loads, then one
/// compare-exchange (for the fixable case), hand-written.
#[inline(never)]
pub fn one_floor(s: &Setup, dirty: &mut u64) -> bool {
    if s.case == Case::Fixable {
        slot(s.slot).store(s.arm, Ordering::Relaxed);
    }
    let gfn = black_box(s.fault.gfn);
    let mut table = black_box(s.tables.root().spt().unwrap().as_ptr());
    let mut level = s.level;
    let mut v;
    loop {
        let p = table.wrapping_add(spte::spte_index(gfn, level));
        v = slot(p).load(Ordering::Relaxed);
        if level == 1 {
            break;
        }
        table = (v & BASE_ADDR_MASK) as *mut u64;
        level -= 1;
    }
    if s.case != Case::Fixable {
        return false;
    }
    let p = table.wrapping_add(spte::spte_index(gfn, 1));
    let ok = slot(p)
        .compare_exchange(v, v | 2, Ordering::SeqCst, Ordering::SeqCst)
        .is_ok();
    if ok {
        *dirty += 1;
    }
    ok
}

pub fn expected(case: Case) -> FastPfResult {
    match case {
        Case::Fixable => FastPfResult::Fixed,
        Case::Spurious => FastPfResult::Spurious,
        Case::NonPresent => FastPfResult::Invalid,
    }
}
