//! Loom model of the lockless fast page fault: two vCPUs fault on the same
//! write-protected (dirty-logged: MMU-writable, not writable) SPTE while a
//! zapper freezes it and then zaps or restores it.
//!
//! Run with `./run-loom.sh` (RUSTFLAGS="--cfg loom" cargo test --release
//! --test loom).
#![cfg(loom)]

use core::ptr::NonNull;
use kvm_rs_host::fast_pf::{self, FastPfResult};
use kvm_rs_host::spte::{self, Masks, FROZEN_SPTE, SHADOW_NONPRESENT_VALUE};
use kvm_rs_host::tdp_mmu::{Root, Section};
use loom::sync::atomic::{AtomicU64, Ordering};
use loom::sync::Arc;
use std::cell::RefCell;

/// Fake address of the root table; the child table is one page above.
/// Never dereferenced: the section maps addresses to loom atomics.
const BASE: u64 = 0x7f00_0000_0000;
const CHILD: u64 = BASE + 0x1000;
const GFN: u64 = 0;

fn masks() -> Masks {
    kvm_rs_host::testing::ept_masks(true)
}

/// EPT, 4K, dirty-logged: MMU-writable + host-writable, R+X, not W.
/// `EPT_SPTE_MMU_WRITABLE` | `EPT_SPTE_HOST_WRITABLE` of the series.
#[cfg(not(kvm_rs_6_12))]
const EPT_WRITABLE_BITS: u64 = (1 << 55) | (1 << 53);
#[cfg(kvm_rs_6_12)]
const EPT_WRITABLE_BITS: u64 = (1 << 58) | (1 << 57);
const WP: u64 = (1 << 11) | EPT_WRITABLE_BITS | 0x5 | (1 << 8) | 0x4_2000;
const NON_LEAF: u64 = CHILD | (1 << 11) | 0x7;

/// The two SPTEs on the walk for GFN, as loom atomics: [root entry, leaf].
struct Sptes([AtomicU64; 2]);

impl Sptes {
    fn new() -> Arc<Self> {
        Arc::new(Sptes([AtomicU64::new(NON_LEAF), AtomicU64::new(WP)]))
    }
    fn leaf(&self) -> &AtomicU64 {
        &self.0[1]
    }
}

/// How a vCPU's compare-exchange is implemented (the buggy one is there to
/// show the model catches a lost update).
#[derive(Clone, Copy, PartialEq)]
enum Cas {
    Atomic,
    LoadThenStore,
}

/// A `Section` whose pointers are fake addresses mapped onto loom atomics
/// by `(ptr - table) / 8`; it logs its compare-exchanges.
struct LoomSection {
    sptes: Arc<Sptes>,
    cas: Cas,
    /// (old, new, succeeded)
    log: RefCell<Vec<(u64, u64, bool)>>,
}

impl LoomSection {
    fn atomic(&self, p: *mut u64) -> &AtomicU64 {
        let a = p as u64;
        let (table, slot) = if (BASE..BASE + 4096).contains(&a) {
            (BASE, 0)
        } else {
            (CHILD, 1)
        };
        assert!(
            (table..table + 4096).contains(&a),
            "walk left the tables: {a:#x}"
        );
        let index = (a - table) / 8;
        assert_eq!(
            index,
            spte::spte_index(GFN, 2 - slot as u32) as u64,
            "wrong entry"
        );
        &self.sptes.0[slot]
    }
}

// SAFETY: no memory is dereferenced; loads and compare-exchanges are loom
// atomic operations (Relaxed load = READ_ONCE, SeqCst cmpxchg = fully
// ordered try_cmpxchg64).
unsafe impl Section for LoomSection {
    unsafe fn load(&self, sptep: *mut u64) -> u64 {
        self.atomic(sptep).load(Ordering::Relaxed)
    }

    unsafe fn cmpxchg(&self, sptep: *mut u64, old: u64, new: u64) -> Result<(), u64> {
        let a = self.atomic(sptep);
        let r = match self.cas {
            Cas::Atomic => a
                .compare_exchange(old, new, Ordering::SeqCst, Ordering::SeqCst)
                .map(|_| ()),
            Cas::LoadThenStore => {
                let cur = a.load(Ordering::SeqCst);
                if cur == old {
                    a.store(new, Ordering::SeqCst);
                    Ok(())
                } else {
                    Err(cur)
                }
            }
        };
        self.log.borrow_mut().push((old, new, r.is_ok()));
        r
    }

    unsafe fn table(&self, pa: u64) -> Option<NonNull<u64>> {
        NonNull::new(pa as *mut u64)
    }
}

/// What the zapper does after freezing.
#[derive(Clone, Copy, PartialEq, Debug)]
enum After {
    Zap,
    Restore,
}

struct VcpuResult {
    result: FastPfResult,
    marks: u32,
    log: Vec<(u64, u64, bool)>,
}

fn vcpu(sptes: Arc<Sptes>, cas: Cas) -> VcpuResult {
    let section = LoomSection {
        sptes,
        cas,
        log: RefCell::new(Vec::new()),
    };
    let masks = masks();
    // SAFETY: walked only in a `LoomSection`, which dereferences no
    // address: BASE is a key of its model.
    let root = unsafe { Root::new(BASE as *mut u64, 2, 0) };
    // EPT write fault (7.3: permissions[PFERR_WRITE >> 1] faults on every
    // non-writable access combination; 6.12: not a fetch).
    let fault = kvm_rs_host::testing::write_fault(GFN, true);
    let mut marks = 0;
    let out = fast_pf::fast_page_fault(&section, &masks, &root, &fault, || marks += 1);
    let result = out.result;
    drop(out);
    VcpuResult {
        result,
        marks,
        log: section.log.into_inner(),
    }
}

fn zapper(sptes: Arc<Sptes>, after: After) -> u64 {
    let leaf = sptes.leaf();
    // tdp_mmu_set_spte_atomic()-style freeze: cmpxchg from what we read.
    let mut old = leaf.load(Ordering::Relaxed);
    let mut frozen = false;
    for _ in 0..4 {
        match leaf.compare_exchange(old, FROZEN_SPTE, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => {
                frozen = true;
                break;
            }
            Err(cur) => old = cur,
        }
    }
    assert!(frozen, "vCPUs make at most two changes");
    // Nobody may write over FROZEN_SPTE.
    assert_eq!(
        leaf.load(Ordering::SeqCst),
        FROZEN_SPTE,
        "FROZEN_SPTE overwritten"
    );
    match after {
        After::Zap => leaf.store(SHADOW_NONPRESENT_VALUE, Ordering::SeqCst),
        After::Restore => leaf.store(old, Ordering::SeqCst),
    }
    old
}

fn model(after: After, cas: Cas) {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let mut builder = loom::model::Builder::new();
    // LOOM_MAX_PREEMPTIONS overrides; unbounded is exhaustive but slower.
    if builder.preemption_bound.is_none() && std::env::var_os("LOOM_UNBOUNDED").is_none() {
        builder.preemption_bound = Some(3);
    }
    let start = RUNS.load(std::sync::atomic::Ordering::Relaxed);
    builder.check(move || {
        RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let sptes = Sptes::new();
        let v1 = {
            let s = sptes.clone();
            loom::thread::spawn(move || vcpu(s, cas))
        };
        let v2 = {
            let s = sptes.clone();
            loom::thread::spawn(move || vcpu(s, cas))
        };
        let z = {
            let s = sptes.clone();
            loom::thread::spawn(move || zapper(s, after))
        };
        let r1 = v1.join().unwrap();
        let r2 = v2.join().unwrap();
        let frozen_from = z.join().unwrap();
        let fin = sptes.leaf().load(Ordering::SeqCst);

        let mut transitions = 0;
        let mut fixes = 0;
        for r in [&r1, &r2] {
            for &(old, new, ok) in &r.log {
                assert_ne!(old, FROZEN_SPTE, "vCPU tried to overwrite FROZEN_SPTE");
                if ok {
                    fixes += 1;
                    if !spte::is_writable(old) && spte::is_writable(new) {
                        transitions += 1;
                    }
                }
            }
            assert!(r.marks <= 1);
            assert_eq!(r.result == FastPfResult::Fixed, r.log.iter().any(|l| l.2));
        }
        // One dirty mark per W 0->1 transition, none lost, none doubled.
        assert_eq!(r1.marks + r2.marks, transitions);
        // The zapper only ever puts back what it froze: one W 0->1 at most.
        assert!(transitions <= 1 && fixes <= 1);
        match after {
            After::Zap => assert_eq!(fin, SHADOW_NONPRESENT_VALUE, "a vCPU wrote after the zap"),
            After::Restore => {
                assert!(fin == frozen_from || fin == (frozen_from | 2), "{fin:#x}");
                if spte::is_writable(fin) {
                    assert!(r1.marks + r2.marks >= 1, "writable SPTE with no dirty mark");
                }
            }
        }
        if spte::is_writable(frozen_from) {
            // Frozen after a fix: that fix was marked.
            assert!(r1.marks + r2.marks >= 1, "lost dirty mark");
        }
    });
    let runs = RUNS.load(std::sync::atomic::Ordering::Relaxed) - start;
    eprintln!(
        "loom {after:?} {}: {runs} interleavings",
        if cas == Cas::Atomic {
            "atomic"
        } else {
            "buggy"
        }
    );
    assert!(runs > 100, "the model explored interleavings");
}

#[test]
fn two_vcpus_and_a_zapper() {
    model(After::Zap, Cas::Atomic);
}

#[test]
fn two_vcpus_and_a_freeze_restore() {
    model(After::Restore, Cas::Atomic);
}

/// The model catches a compare-exchange that is not atomic: a vCPU's store
/// lands on FROZEN_SPTE.
#[test]
#[should_panic(expected = "FROZEN_SPTE overwritten")]
fn non_atomic_cmpxchg_is_caught() {
    model(After::Zap, Cas::LoadThenStore);
}
