//! Fuzz-style: the whole input range (any gfn, root level, gfn_bits, masks,
//! SPTE contents that change on every read) over a fake section that never
//! dereferences anything. No panic; every load is at the address the walk
//! derives; the only writes are compare-exchanges of the last SPTE read.

mod common;

use common::sections::{FakeSection, Op};
use common::*;
use core::ptr::NonNull;
use kvm_rs_host::fast_pf::{self, decide, Decision, FastPfResult, Fault, MAX_RETRIES};
use kvm_rs_host::spte::{self, Masks};
use kvm_rs_host::tdp_mmu::{fast_pf_get_last_sptep, get_walk, Root, WalkError};
use proptest::prelude::*;

fn masks_strategy() -> impl Strategy<Value = Masks> {
    let arbitrary = (any::<[u64; 8]>(), any::<bool>()).prop_map(|(v, ad)| Masks {
        nx: v[0],
        user: v[1],
        xs: v[2],
        xu: v[3],
        mmu_writable: v[4],
        acc_track: v[5],
        accessed: v[6],
        base_addr: v[7],
        ad_enabled: ad,
    });
    prop_oneof![3 => config_strategy().prop_map(|m| masks_of(&m)), 1 => arbitrary]
}

fn root_strategy() -> impl Strategy<Value = Root> {
    let spt = prop_oneof![
        1 => Just(None),
        8 => any::<u64>().prop_map(|a| NonNull::new(a as *mut u64)),
        4 => (1u64..1 << 40).prop_map(|a| NonNull::new((a << 12) as *mut u64)),
    ];
    let level = prop_oneof![4 => 1u32..=5, 2 => 0u32..=255, 1 => any::<u32>()];
    let gfn_bits =
        prop_oneof![3 => Just(0u64), 2 => (0u32..64).prop_map(|b| 1u64 << b), 1 => any::<u64>()];
    (spt, level, gfn_bits).prop_map(|(spt, level, gfn_bits)| Root {
        spt,
        level,
        gfn_bits,
    })
}

fn gfn_strategy() -> impl Strategy<Value = u64> {
    prop_oneof![any::<u64>(), 0u64..1 << 40, Just(u64::MAX), Just(0)]
}

/// A present non-leaf SPTE pointing to a fake table, sometimes: so that
/// walks do get deep.
fn value_strategy() -> impl Strategy<Value = u64> {
    prop_oneof![
        3 => spte_strategy(),
        2 => (1u64..1 << 30).prop_map(|pfn| (pfn << 12) | (1 << 11) | 7),
    ]
}

/// Replays the fake section's log against the walk rules; returns the
/// number of successful exchanges that set W.
fn check_log(ops: &[Op], masks: &Masks, root: &Root, fault: &Fault, max_walks: usize) -> u32 {
    let valid = root.spt.is_some()
        && (1..=5).contains(&root.level)
        && !(root.gfn_bits != 0 && fault.gfn >= root.gfn_bits);
    if !valid {
        assert!(ops.is_empty(), "no access for a walk that cannot start");
        return 0;
    }
    let addr_gfn = fault.gfn | root.gfn_bits;
    let idx = |level: u32| spte::spte_index(addr_gfn, level) as u64 * 8;
    let mut i = 0;
    let mut walks = 0;
    let mut w_transitions = 0;
    while i < ops.len() {
        walks += 1;
        assert!(walks <= max_walks, "too many walks");
        // One walk.
        let mut level = root.level;
        let mut table = root.spt.unwrap().as_ptr() as u64;
        let (last_ptr, last_val) = loop {
            let Op::Load { ptr, val } = ops[i] else {
                panic!("expected a load at {i}: {ops:?}")
            };
            let want_ptr = table.wrapping_add(idx(level));
            assert!(
                want_ptr == ptr || (want_ptr == 0 && ptr == table),
                "load at {ptr:#x}, walk says {want_ptr:#x}"
            );
            i += 1;
            if level == 1
                || !spte::is_shadow_present(val)
                || spte::is_large(val)
                || val & masks.base_addr == 0
            {
                break (ptr, val);
            }
            table = val & masks.base_addr;
            level -= 1;
        };
        if i == ops.len() {
            // Gave up or spurious: no write.
            assert!(!matches!(
                decide(masks, fault, last_val, level),
                Decision::Fix(_)
            ));
            break;
        }
        let Op::Cmpxchg {
            ptr, old, new, ok, ..
        } = ops[i]
        else {
            panic!("expected the cmpxchg")
        };
        i += 1;
        assert_eq!(ptr, last_ptr, "exchange on the SPTE the walk ended at");
        assert_eq!(old, last_val, "exchange from the value the walk read");
        assert_eq!(decide(masks, fault, last_val, level), Decision::Fix(new));
        assert_ne!(old, spte::FROZEN_SPTE);
        if ok {
            assert_eq!(i, ops.len(), "nothing after a successful exchange");
            w_transitions += (!spte::is_writable(old) && spte::is_writable(new)) as u32;
        }
    }
    w_transitions
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 100000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn fuzz_fast_page_fault(masks in masks_strategy(), root in root_strategy(), gfn in gfn_strategy(),
                            values in proptest::collection::vec(value_strategy(), 1..12),
                            cas_ok in proptest::collection::vec(any::<bool>(), 0..8),
                            permissions in any::<u16>(), write in any::<bool>(), dirty in any::<bool>()) {
        let section = FakeSection::new(values, cas_ok);
        let fault = Fault { gfn, write, permissions, slot_dirty_tracked: dirty };
        let mut marks = 0u32;
        let out = fast_pf::fast_page_fault(&section, &masks, &root, &fault, || marks += 1);
        let ops = section.ops.borrow().clone();
        let transitions = check_log(&ops, &masks, &root, &fault, MAX_RETRIES as usize + 1);
        prop_assert_eq!(marks, transitions);
        let cas: Vec<_> = ops.iter().filter(|o| matches!(o, Op::Cmpxchg { .. })).collect();
        let fixed = cas.iter().any(|o| matches!(o, Op::Cmpxchg { ok: true, .. }));
        let n_cas = cas.len();
        prop_assert!(n_cas <= MAX_RETRIES as usize + 1);
        prop_assert_eq!(out.result == FastPfResult::Fixed, fixed);
        prop_assert_eq!(out.retries_exhausted, n_cas == MAX_RETRIES as usize + 1 && !fixed);
        match out.last {
            Err(WalkError::InvalidRoot) => prop_assert!(root.spt.is_none() || !(1..=5).contains(&root.level)),
            Err(WalkError::GfnOutOfRange) => prop_assert!(root.gfn_bits != 0 && gfn >= root.gfn_bits),
            Ok(last) => prop_assert!((1..=root.level).contains(&last.level)),
        }
    }

    #[test]
    fn fuzz_walks(masks in masks_strategy(), root in root_strategy(), gfn in gfn_strategy(),
                  values in proptest::collection::vec(value_strategy(), 1..12)) {
        let section = FakeSection::new(values.clone(), vec![]);
        let fault = Fault { gfn, ..Fault::default() };
        let r = fast_pf_get_last_sptep(&section, &masks, &root, gfn);
        let ops = section.ops.borrow().clone();
        check_log(&ops, &masks, &root, &Fault { permissions: 0, ..fault }, 1);
        let all_loads = ops.iter().all(|o| matches!(o, Op::Load { .. }));
        prop_assert!(all_loads);
        prop_assert!(ops.len() <= 5);
        let section = FakeSection::new(values, vec![]);
        let mut sptes = [0x5a5a_u64; 6];
        let g = get_walk(&section, &masks, &root, gfn, &mut sptes);
        prop_assert_eq!(g.ok(), r.ok().map(|l| l.level));
        let loads = section.ops.borrow().len();
        prop_assert_eq!(loads, ops.len());
        prop_assert_eq!(sptes[0], 0x5a5a_u64);
    }
}
