//! The fast_page_fault() retry loop, with "another CPU" changing the SPTE
//! between the walk's read and the compare-exchange.

mod common;

use common::reference::{self as c, RefMmu, RefStep, RetPf};
use common::sections::{read_host, HookSection, Op};
use common::*;
use core::sync::atomic::{AtomicU64, Ordering};
use kvm_rs_host::fast_pf::{self, FastPfResult, MAX_RETRIES};
use kvm_rs_host::spte::{self, FROZEN_SPTE, SHADOW_NONPRESENT_VALUE};
use kvm_rs_host::testing::Tables;
use proptest::prelude::*;
use std::cell::Cell;

const GFN: u64 = 0x12_3456;

/// EPT with A/D: a 4K SPTE write-protected for dirty logging.
fn ept() -> RefMmu {
    RefMmu::ept(true, false)
}
const WP: u64 =
    (1 << 11) | c::EPT_SPTE_MMU_WRITABLE | c::EPT_SPTE_HOST_WRITABLE | 0x5 | (1 << 8) | 0x4_2000;
/// A bit the decision ignores (EPT bit 57: ignored in 7.3, host-writable in
/// 6.12) that the other CPU flips to make our cmpxchg fail
/// while keeping the SPTE fixable.
const NOISE: u64 = 1 << 57;

fn write_fault(m: &RefMmu) -> fast_pf::Fault {
    fault_of(m, GFN, c::PFERR_WRITE_MASK | c::PFERR_PRESENT_MASK, true)
}

fn setup(root_level: u32, leaf: u64) -> (Tables, *mut u64) {
    let mut t = Tables::new(root_level);
    t.map(GFN, 1, leaf);
    let p = t.slot_ptr(GFN, 1);
    (t, p)
}

/// No successful compare-exchange ever had FROZEN_SPTE as its old value,
/// and every one was a W 0->1 iff mark_dirty was called for it.
fn check_ops(ops: &[Op], dirty_marks: u32) {
    let mut transitions = 0;
    for op in ops {
        if let Op::Cmpxchg { old, new, ok, .. } = *op {
            assert_ne!(old, FROZEN_SPTE, "fast path tried to overwrite FROZEN_SPTE");
            if ok && !spte::is_writable(old) && spte::is_writable(new) {
                transitions += 1;
            }
        }
    }
    assert_eq!(
        dirty_marks, transitions,
        "one dirty mark per W 0->1 by this CPU"
    );
}

#[test]
fn retries_up_to_max_then_invalid() {
    let m = ept();
    let masks = masks_of(&m);
    for root_level in [4u32, 5] {
        for n in 0..=(MAX_RETRIES + 3) {
            let (t, p) = setup(root_level, WP);
            let left = Cell::new(n);
            let section = HookSection::new(t.section()).on_cmpxchg(|s: &AtomicU64, _| {
                if left.get() > 0 {
                    left.set(left.get() - 1);
                    s.fetch_xor(NOISE, Ordering::SeqCst);
                }
            });
            let mut dirty = 0u32;
            let out =
                fast_pf::fast_page_fault(&section, &masks, &t.root(), &write_fault(&m), || {
                    dirty += 1
                });
            let attempts = section.cmpxchgs().len() as u32;
            check_ops(&section.ops(), dirty);
            // Every attempt re-walked the whole path first.
            assert_eq!(section.loads().len() as u32, attempts * root_level);
            if n <= MAX_RETRIES {
                assert_eq!(out.result, FastPfResult::Fixed, "n={n}");
                assert!(!out.retries_exhausted);
                assert_eq!(out.retries, n);
                assert_eq!(attempts, n + 1);
                assert_eq!(dirty, 1);
                assert!(spte::is_writable(read_host(p as u64)));
            } else {
                assert_eq!(out.result, FastPfResult::Invalid, "n={n}");
                assert!(out.retries_exhausted);
                // The C: `if (++retry_count > 4) break;` = 5 exchanges.
                assert_eq!(attempts, MAX_RETRIES + 1);
                assert_eq!(out.retries, MAX_RETRIES + 1);
                assert_eq!(MAX_RETRIES, 4);
                assert_eq!(dirty, 0);
                assert!(!spte::is_writable(read_host(p as u64)));
                // The outcome reports the last walk's snapshot.
                let last = out.last.as_ref().unwrap();
                assert_eq!(last.sptep().as_ptr(), p);
                // Walk k (from 0) saw WP with NOISE flipped k times.
                assert_eq!(
                    last.spte(),
                    WP ^ if MAX_RETRIES % 2 == 1 { NOISE } else { 0 }
                );
            }
        }
    }
}

/// The differential mode's view of the loop: every decision, in order, then
/// the result of its compare-exchange, as the C loop it is replayed on
/// (`kvm_rs_c_fast_pf_loop()`) needs them.
#[test]
fn observed_sees_each_decision_then_its_exchange() {
    let m = ept();
    let masks = masks_of(&m);
    for n in 0..=(MAX_RETRIES + 2) {
        let (t, _p) = setup(4, WP);
        let left = Cell::new(n);
        let section = HookSection::new(t.section()).on_cmpxchg(|s: &AtomicU64, _| {
            if left.get() > 0 {
                left.set(left.get() - 1);
                s.fetch_xor(NOISE, Ordering::SeqCst);
            }
        });
        // 'd': a fix decided, 'w'/'l': its exchange won/lost.
        let events = core::cell::RefCell::new(String::new());
        let out = fast_pf::fast_page_fault_observed(
            &section,
            &masks,
            &t.root(),
            &write_fault(&m),
            || {},
            |_, d| {
                assert!(matches!(d, fast_pf::Decision::Fix(_)), "n={n}: {d:?}");
                events.borrow_mut().push('d');
            },
            |won| events.borrow_mut().push(if won { 'w' } else { 'l' }),
        );
        let lost = n.min(MAX_RETRIES + 1) as usize;
        let mut want = "dl".repeat(lost);
        if n <= MAX_RETRIES {
            want.push_str("dw");
        }
        assert_eq!(*events.borrow(), want, "n={n}");
        assert_eq!(out.retries as usize, lost, "n={n}");
    }
}

#[test]
fn other_cpu_fixes_first_no_dirty_mark() {
    let m = ept();
    let masks = masks_of(&m);
    let (t, p) = setup(4, WP);
    // Another vCPU wins the race to make it writable (and marks dirty itself).
    let section = HookSection::new(t.section()).on_cmpxchg(|s: &AtomicU64, i| {
        if i == 0 {
            s.fetch_or(2, Ordering::SeqCst);
        }
    });
    let mut dirty = 0u32;
    let out =
        fast_pf::fast_page_fault(&section, &masks, &t.root(), &write_fault(&m), || dirty += 1);
    assert_eq!(out.result, FastPfResult::Spurious);
    assert_eq!(dirty, 0, "W 0->1 was done by the other CPU");
    assert_eq!(section.cmpxchgs().len(), 1);
    assert_eq!(read_host(p as u64), WP | 2);
    check_ops(&section.ops(), dirty);
}

#[test]
fn read_fault_on_access_tracked_no_dirty_mark() {
    // EPT without A/D: access-tracked, MMU-writable; a read restores R/X.
    let m = RefMmu::ept(false, false);
    let masks = masks_of(&m);
    let at = (1 << 11)
        | c::SPTE_TDP_AD_DISABLED
        | c::EPT_SPTE_MMU_WRITABLE
        | c::EPT_SPTE_HOST_WRITABLE
        | (0x5u64 << c::SHADOW_ACC_TRACK_SAVED_BITS_SHIFT)
        | 0x9000;
    let (t, p) = setup(5, at);
    let section = HookSection::new(t.section());
    let mut dirty = 0u32;
    let out = fast_pf::fast_page_fault(
        &section,
        &masks,
        &t.root(),
        &fault_of(&m, GFN, 0, true),
        || dirty += 1,
    );
    assert_eq!(out.result, FastPfResult::Fixed);
    assert_eq!(dirty, 0);
    let now = read_host(p as u64);
    assert_eq!(now & 7, 5);
    assert!(!spte::is_writable(now));
    // Then a write: W 0->1, one mark.
    let section = HookSection::new(t.section());
    let out = fast_pf::fast_page_fault(
        &section,
        &masks,
        &t.root(),
        &fault_of(&m, GFN, 2, true),
        || dirty += 1,
    );
    assert_eq!(out.result, FastPfResult::Fixed);
    assert_eq!(dirty, 1);
    assert!(spte::is_writable(read_host(p as u64)));
    // And again: spurious, no second mark.
    let section = t.section();
    let out = fast_pf::fast_page_fault(
        &section,
        &masks,
        &t.root(),
        &fault_of(&m, GFN, 2, true),
        || dirty += 1,
    );
    assert_eq!(out.result, FastPfResult::Spurious);
    assert_eq!(dirty, 1);
}

#[test]
fn concurrent_freeze_is_never_overwritten() {
    let m = ept();
    let masks = masks_of(&m);
    // Freeze right before the k-th compare-exchange (after k noisy
    // failures), or right after the walk's j-th load.
    for k in 0..=MAX_RETRIES + 1 {
        let (t, p) = setup(4, WP);
        let section = HookSection::new(t.section()).on_cmpxchg(|s: &AtomicU64, i| {
            if (i as u32) < k {
                s.fetch_xor(NOISE, Ordering::SeqCst);
            } else if i as u32 == k {
                let cur = s.load(Ordering::SeqCst);
                s.compare_exchange(cur, FROZEN_SPTE, Ordering::SeqCst, Ordering::SeqCst)
                    .unwrap();
            }
        });
        let mut dirty = 0u32;
        let out =
            fast_pf::fast_page_fault(&section, &masks, &t.root(), &write_fault(&m), || dirty += 1);
        check_ops(&section.ops(), dirty);
        assert_eq!(dirty, 0);
        assert_eq!(
            read_host(p as u64),
            if k <= MAX_RETRIES {
                FROZEN_SPTE
            } else {
                WP ^ NOISE
            }
        );
        assert_eq!(out.result, FastPfResult::Invalid);
        // A freeze before the 5th exchange makes that one fail too: bound hit.
        assert_eq!(out.retries_exhausted, k >= MAX_RETRIES);
        assert_eq!(out.retries, (k + 1).min(MAX_RETRIES + 1));
        if k < MAX_RETRIES {
            // Walked once more, saw FROZEN_SPTE, and gave up without writing.
            assert_eq!(out.last.as_ref().unwrap().spte(), FROZEN_SPTE);
            assert_eq!(section.cmpxchgs().len() as u32, k + 1);
        }
    }
    // Freeze/zap at every load of the walk, then zap or unfreeze.
    for j in 0..8usize {
        for after in [FROZEN_SPTE, SHADOW_NONPRESENT_VALUE, WP] {
            let (t, p) = setup(4, WP);
            let section = HookSection::new(t.section())
                .on_load(|s: &AtomicU64, i| {
                    if i == j && s.as_ptr() as u64 == p as u64 {
                        s.store(FROZEN_SPTE, Ordering::SeqCst);
                    }
                })
                .on_cmpxchg(|s: &AtomicU64, _| {
                    if s.load(Ordering::SeqCst) == FROZEN_SPTE {
                        s.store(after, Ordering::SeqCst);
                    }
                });
            let mut dirty = 0u32;
            let out =
                fast_pf::fast_page_fault(&section, &masks, &t.root(), &write_fault(&m), || {
                    dirty += 1
                });
            check_ops(&section.ops(), dirty);
            let fin = read_host(p as u64);
            if out.result == FastPfResult::Fixed {
                assert_eq!(fin, WP | 2);
                assert_eq!(dirty, 1);
            } else {
                assert_eq!(dirty, 0);
                assert!(!spte::is_writable(fin));
            }
        }
    }
}

/// What another CPU does to the SPTE right before one of our exchanges.
#[derive(Clone, Copy, Debug)]
enum Other {
    Nothing,
    Freeze,
    Zap,
    SetW,
    FlipNoise,
    ClearMmuWritable,
    Store(u64),
}

/// Any interleaving of another CPU's stores: the result matches a
/// reference replay, no write over FROZEN_SPTE, one dirty mark per W 0->1.
fn interference_value() -> impl Strategy<Value = Other> {
    prop_oneof![
        2 => Just(Other::Nothing),
        1 => Just(Other::Freeze),
        1 => Just(Other::Zap),
        1 => Just(Other::SetW),
        6 => Just(Other::FlipNoise),
        1 => Just(Other::ClearMmuWritable),
        1 => spte_strategy().prop_map(Other::Store),
    ]
}

/// A leaf the fault can fix under `m`: MMU-present, readable, user/exec
/// bit 2, MMU- and host-writable; access-tracked sometimes.
fn leaf_strategy(m: RefMmu) -> impl Strategy<Value = u64> {
    let fixable =
        (1u64 << 11) | 1 | 4 | m.shadow_mmu_writable_mask | m.shadow_host_writable_mask | 0x6_6000;
    let acc_tracked = if m.kvm_ad_enabled {
        fixable
    } else {
        (fixable & !m.shadow_acc_track_mask)
            | c::SPTE_TDP_AD_DISABLED
            | (5 << c::SHADOW_ACC_TRACK_SAVED_BITS_SHIFT)
    };
    prop_oneof![3 => Just(fixable), 2 => Just(acc_tracked), 2 => spte_strategy()]
}

fn config_and_leaf() -> impl Strategy<Value = (RefMmu, u64)> {
    config_strategy().prop_flat_map(|m| (Just(m.clone()), leaf_strategy(m)))
}

static EXHAUSTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static FIXED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The interference property reaches both retry exhaustion and fixes.
#[test]
fn prop_interference_coverage() {
    // Runs the property in this thread so the counters are its own.
    prop_interference();
    let (e, f) = (
        EXHAUSTED.load(Ordering::Relaxed),
        FIXED.load(Ordering::Relaxed),
    );
    assert!(e > 50 && f > 1000, "exhausted {e}, fixed {f}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 20000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn prop_interference((m, leaf) in config_and_leaf(), ec in prop_oneof![Just(2u64), Just(3u64), error_code_strategy()],
                         dirty_tracked in any::<bool>(),
                         script in proptest::collection::vec(interference_value(), 0..8)) {
        let masks = masks_of(&m);
        let (t, p) = setup(4, leaf);
        let script2 = script.clone();
        let mmu_w = m.shadow_mmu_writable_mask;
        let section = HookSection::new(t.section()).on_cmpxchg(move |s: &AtomicU64, i| {
            let cur = s.load(Ordering::SeqCst);
            let new = match script2.get(i).copied().unwrap_or(Other::Nothing) {
                Other::Nothing => cur,
                Other::Freeze => FROZEN_SPTE,
                Other::Zap => SHADOW_NONPRESENT_VALUE,
                Other::SetW => cur | 2,
                Other::FlipNoise => cur ^ NOISE,
                Other::ClearMmuWritable => cur & !mmu_w & !2,
                Other::Store(v) => v,
            };
            s.store(new, Ordering::SeqCst);
        });
        let mut dirty = 0u32;
        let fault = fault_of(&m, GFN, ec, dirty_tracked);
        let out = fast_pf::fast_page_fault(&section, &masks, &t.root(), &fault, || dirty += 1);
        let ops = section.ops();
        check_ops(&ops, dirty);
        prop_assert!(dirty <= 1);
        prop_assert!(section.cmpxchgs().len() as u32 <= MAX_RETRIES + 1);
        prop_assert!(section.successful_cmpxchgs().len() <= 1);

        // Reference replay of the C loop on the values the walks saw.
        let mut cas = section.cmpxchgs().into_iter();
        let mut ret = None;
        let mut retry_count = 0;
        for snapshot in section.loads().iter().skip(3).step_by(4).map(|l| l.1) {
            match m.fast_page_fault_body(snapshot, 1, ec, dirty_tracked) {
                RefStep::Break(r) => { ret = Some(r); break; }
                RefStep::Fix(new) => {
                    let Some(Op::Cmpxchg { old, new: n2, ok, ptr, .. }) = cas.next() else {
                        return Err(TestCaseError::fail("missing cmpxchg"));
                    };
                    prop_assert_eq!((old, n2, ptr), (snapshot, new, p as u64));
                    if ok { ret = Some(RetPf::Fixed); break; }
                    retry_count += 1;
                    if retry_count > 4 { ret = Some(RetPf::Invalid); break; }
                }
            }
        }
        prop_assert!(cas.next().is_none());
        let want = match ret.unwrap() {
            RetPf::Invalid => FastPfResult::Invalid,
            RetPf::Fixed => FastPfResult::Fixed,
            RetPf::Spurious => FastPfResult::Spurious,
        };
        prop_assert_eq!(out.result, want);
        prop_assert_eq!(out.retries_exhausted, retry_count > 4);
        prop_assert_eq!(out.retries, retry_count);
        EXHAUSTED.fetch_add(out.retries_exhausted as usize, Ordering::Relaxed);
        FIXED.fetch_add((out.result == FastPfResult::Fixed) as usize, Ordering::Relaxed);
    }
}
