//! Walker tests on synthetic 1..5-level tables, against a reference walker
//! that follows tdp_iter.c (tests/common/reference.rs).

mod common;

use common::reference::{self as c, RefMmu, Visit};
use common::sections::{read_host, HookSection, Op};
use common::*;
use kvm_rs_host::fast_pf::{self, FastPfResult};
use kvm_rs_host::spte::{self, FROZEN_SPTE, SHADOW_NONPRESENT_VALUE};
use kvm_rs_host::tdp_mmu::{fast_pf_get_last_sptep, get_walk, Root, WalkError};
use kvm_rs_host::testing::{npt_masks, Tables};
use proptest::prelude::*;
use std::collections::HashSet;
use std::mem::MaybeUninit;

const SENTINEL: u64 = 0xdead_beef_dead_beef;

/// `get_walk()`'s array after a walk, for an array initialised by the test.
fn init(sptes: [MaybeUninit<u64>; 6]) -> [u64; 6] {
    // SAFETY: the tests initialise every element before the walk, which
    // only overwrites some of them.
    sptes.map(|s| unsafe { s.assume_init() })
}

/// A leaf SPTE: MMU-present, readable, MMU-writable (NPT bit 10), some pfn.
const LEAF: u64 = (1 << 11) | 1 | (1 << 10) | (1 << 9) | 0x7_7000;

fn reference_walk(root: &Root, gfn: u64) -> Option<Vec<Visit>> {
    let m = RefMmu::npt(false);
    c::for_each_tdp_pte(
        &m,
        &mut |p| read_host(p),
        root.spt().map(|p| p.as_ptr() as u64),
        root.level() as i32,
        gfn,
        root.gfn_bits(),
    )
}

/// Check `fast_pf_get_last_sptep()` and `get_walk()` against the reference
/// walker, and that each SPTE on the path is loaded exactly once, in order.
/// Returns the visits.
fn check_walk(tables: &Tables, root: &Root, gfn: u64) -> Vec<Visit> {
    let masks = npt_masks();
    let want = reference_walk(root, gfn).expect("valid walk");
    assert!(!want.is_empty());
    let section = HookSection::new(tables.section());
    let last = fast_pf_get_last_sptep(&section, &masks, root, gfn).expect("walk");
    let lw = want.last().unwrap();
    assert_eq!(last.level() as i32, lw.level, "gfn {gfn:#x}");
    assert_eq!(last.sptep().as_ptr() as u64, lw.sptep);
    assert_eq!(last.spte(), lw.old_spte);
    let loads: Vec<u64> = section.loads().iter().map(|l| l.0).collect();
    let path: Vec<u64> = want.iter().map(|v| v.sptep).collect();
    assert_eq!(
        loads, path,
        "each SPTE on the path read exactly once, in order"
    );
    assert_eq!(loads.iter().collect::<HashSet<_>>().len(), loads.len());
    assert!(section.cmpxchgs().is_empty());

    let section = HookSection::new(tables.section());
    let mut sptes = [MaybeUninit::new(SENTINEL); 6];
    let level = get_walk(&section, &masks, root, gfn, &mut sptes).expect("get_walk");
    let sptes = init(sptes);
    assert_eq!(level as i32, lw.level);
    let mut expect = [SENTINEL; 6];
    for v in &want {
        expect[v.level as usize] = v.old_spte;
    }
    assert_eq!(sptes, expect, "get_walk records exactly the levels visited");
    assert_eq!(section.loads().len(), want.len());
    want
}

#[test]
fn leaf_at_each_level() {
    for root_level in 1..=5u32 {
        for leaf_level in 1..=root_level {
            for gfn in [
                0u64,
                0x1234_5678 & ((1 << (9 * root_level)) - 1),
                (1u64 << (9 * root_level)) - 1,
            ] {
                let mut t = Tables::new(root_level);
                t.map(gfn, leaf_level, LEAF);
                let ptr = t.slot_ptr(gfn, leaf_level) as u64;
                let root = t.root();
                let want = check_walk(&t, &root, gfn);
                assert_eq!(want.len() as u32, root_level - leaf_level + 1);
                let last = want.last().unwrap();
                assert_eq!(last.sptep, ptr);
                let expect_spte = if leaf_level > 1 {
                    LEAF | (1 << 7)
                } else {
                    LEAF
                };
                assert_eq!(last.old_spte, expect_spte);
                // Every 4K gfn inside the huge page walks to the same SPTE.
                let base = gfn & !((1u64 << (9 * (leaf_level - 1))) - 1);
                let span = 1u64 << (9 * (leaf_level - 1));
                for off in [0, 1, span / 2, span - 1].into_iter().filter(|&o| o < span) {
                    let w = check_walk(&t, &root, base + off);
                    assert_eq!(w.last().unwrap().sptep, ptr);
                }
            }
        }
    }
}

#[test]
fn non_present_and_frozen_at_each_level() {
    let mmio_like = 1 | (1 << 51) | (0x3f << 3); // present-ish bits, no MMU-present
    for root_level in [4u32, 5] {
        for stop_level in 1..=root_level {
            for raw in [
                0u64,
                SHADOW_NONPRESENT_VALUE,
                FROZEN_SPTE,
                mmio_like,
                (1 << 11) - 1,
                !(1u64 << 11),
            ] {
                let gfn = 0x2_0304_0506u64 & ((1 << (9 * root_level)) - 1);
                let mut t = Tables::new(root_level);
                // A full path to 4K first, then cut it at stop_level.
                t.map(gfn, 1, LEAF);
                t.set_raw(gfn, stop_level, raw);
                let root = t.root();
                let want = check_walk(&t, &root, gfn);
                assert_eq!(want.last().unwrap().level as u32, stop_level);
                assert_eq!(want.last().unwrap().old_spte, raw);

                // The fast path gives up without writing.
                let m = RefMmu::npt(false);
                let section = HookSection::new(t.section());
                let fault = fault_of(&m, gfn, c::PFERR_WRITE_MASK | c::PFERR_PRESENT_MASK, false);
                let out = fast_pf::fast_page_fault(&section, &npt_masks(), &root, &fault, || {
                    panic!("mark_dirty")
                });
                assert_eq!(out.result, FastPfResult::Invalid);
                assert!(!out.retries_exhausted);
                assert!(section.cmpxchgs().is_empty());
                assert_eq!(section.loads().len() as u32, root_level - stop_level + 1);
            }
        }
    }
}

#[test]
fn huge_entries() {
    // 1G leaf on a 5-level root, 2M on a 4-level root, and a large bit at
    // 4K (ignored: 4K is last anyway) and at 512G (stops the walk).
    for (root_level, leaf_level) in [(5, 3), (4, 3), (4, 2), (5, 2), (5, 4), (4, 4), (5, 5)] {
        let mut t = Tables::new(root_level);
        let gfn = 0x1_2345_6789 & ((1u64 << (9 * root_level)) - 1);
        t.map(gfn, leaf_level, LEAF);
        let root = t.root();
        let want = check_walk(&t, &root, gfn);
        assert_eq!(want.last().unwrap().level, leaf_level as i32);
        assert!(spte::is_large(want.last().unwrap().old_spte));
    }
    let mut t = Tables::new(4);
    t.set_raw(77, 1, LEAF | (1 << 7));
    let w = check_walk(&t, &t.root(), 77);
    assert_eq!(w.len(), 4);
    // A large bit on a non-present entry does not make it a table either.
    let mut t = Tables::new(4);
    t.set_raw(77, 3, FROZEN_SPTE);
    assert!(spte::is_large(FROZEN_SPTE));
    assert_eq!(check_walk(&t, &t.root(), 77).len(), 2);
}

#[test]
fn gfn_bits_indexing() {
    // TDX shared bit: GPA bit 47 (4-level) / 51 (5-level) = gfn bit 35 / 39.
    for (root_level, shared) in [(4u32, 1u64 << 35), (5, 1u64 << 39)] {
        let mut t = Tables::new(root_level);
        let gfn = 0x1_2345_6789 & (shared - 1);
        t.map(gfn | shared, 1, LEAF | 0x1000);
        t.map(gfn, 1, LEAF | 0x2000);
        let shared_ptr = t.slot_ptr(gfn | shared, 1) as u64;
        let private_ptr = t.slot_ptr(gfn, 1) as u64;
        assert_ne!(shared_ptr, private_ptr);
        let root = t.root_with_gfn_bits(shared);
        let w = check_walk(&t, &root, gfn);
        assert_eq!(w.last().unwrap().sptep, shared_ptr);
        assert_eq!(w.last().unwrap().old_spte, LEAF | 0x1000);
        let w = check_walk(&t, &t.root(), gfn);
        assert_eq!(w.last().unwrap().sptep, private_ptr);
        // The largest in-range gfn still walks.
        check_walk(&t, &root, shared - 1);

        let masks = npt_masks();
        for bad in [shared, shared | gfn, shared + 1, u64::MAX, shared << 1] {
            let section = HookSection::new(t.section());
            assert_eq!(
                fast_pf_get_last_sptep(&section, &masks, &root, bad).err(),
                Some(WalkError::GfnOutOfRange)
            );
            let mut sptes = [MaybeUninit::new(SENTINEL); 6];
            assert_eq!(
                get_walk(&section, &masks, &root, bad, &mut sptes),
                Err(WalkError::GfnOutOfRange)
            );
            assert_eq!(init(sptes), [SENTINEL; 6]);
            assert!(
                section.ops().is_empty(),
                "no SPTE read for an out-of-range gfn"
            );
            assert_eq!(reference_walk(&root, bad), None);
        }
    }
}

#[test]
fn invalid_root() {
    let mut t = Tables::new(4);
    t.map(5, 1, LEAF);
    let masks = npt_masks();
    let spt = t.root().spt().unwrap().as_ptr();
    // SAFETY: `Root::new()` requires a table allocated for the root's
    // lifetime and its real level, for a non-null table: these roots have no
    // table or a level outside 1..=5, at which a walk reads nothing.
    let invalid = |spt, level| unsafe { Root::new(spt, level, 0) };
    let mut roots = vec![
        invalid(core::ptr::null_mut(), 4),
        invalid(core::ptr::null_mut(), 0),
    ];
    for level in [0u32, 6, 7, 8, 255, 256, u32::MAX] {
        roots.push(invalid(spt, level));
    }
    for root in roots {
        let section = HookSection::new(t.section());
        assert_eq!(
            fast_pf_get_last_sptep(&section, &masks, &root, 5).err(),
            Some(WalkError::InvalidRoot),
            "{root:?}"
        );
        let mut sptes = [MaybeUninit::new(SENTINEL); 6];
        assert_eq!(
            get_walk(&section, &masks, &root, 5, &mut sptes),
            Err(WalkError::InvalidRoot)
        );
        assert_eq!(init(sptes), [SENTINEL; 6]);
        let m = RefMmu::npt(false);
        let out = fast_pf::fast_page_fault(
            &section,
            &masks,
            &root,
            &fault_of(&m, 5, 2, false),
            || panic!(),
        );
        assert_eq!(out.result, FastPfResult::Invalid);
        assert_eq!(out.last.err(), Some(WalkError::InvalidRoot));
        assert!(section.ops().is_empty());
        // tdp_iter_start() refuses them too (with a root gfn_bits of 0).
        if root.level() as i64 <= i32::MAX as i64 {
            assert_eq!(reference_walk(&root, 5), None);
        }
    }
    // And an invalid root wins over an out-of-range gfn.
    // SAFETY: as above: level 9 is outside 1..=5.
    let root = unsafe { Root::new(spt, 9, 1 << 20) };
    let section = t.section();
    assert_eq!(
        fast_pf_get_last_sptep(&section, &masks, &root, 1 << 21).err(),
        Some(WalkError::InvalidRoot)
    );
}

/// A random edit of a tree: a leaf or a non-present value at some level.
fn edit_strategy() -> impl Strategy<Value = (usize, u32, u64)> {
    (0usize..6, 1u32..=5, spte_strategy())
}

fn gfn_pool(seed: u64, root_level: u32) -> Vec<u64> {
    // gfns sharing upper-level paths, differing at one level or another.
    let span = 9 * root_level;
    let base = seed & ((1u64 << span) - 1);
    let mut v = vec![base];
    for l in 0..root_level {
        v.push(base ^ (1 << (9 * l)));
        v.push(base ^ (0x1ff << (9 * l)));
    }
    v.truncate(6);
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10000, failure_persistence: None, ..ProptestConfig::default() })]

    /// Random trees: the walk matches tdp_iter for every gfn of a pool, and
    /// reads each SPTE on the path exactly once.
    #[test]
    fn prop_walk_matches_tdp_iter(root_level in 1u32..=5, seed in any::<u64>(),
                                  edits in proptest::collection::vec(edit_strategy(), 0..12),
                                  extra in proptest::collection::vec(any::<u64>(), 0..4)) {
        let mut t = Tables::new(root_level);
        let pool = gfn_pool(seed, root_level);
        for (i, level, raw) in edits {
            let gfn = pool[i % pool.len()];
            let level = level.min(root_level);
            // Keep present entries above 4K leaves (a random pa would be a
            // pointer into nowhere).
            let raw = if level > 1 && spte::is_shadow_present(raw) { raw | (1 << 7) } else { raw };
            t.set_raw(gfn, level, raw);
        }
        let root = t.root();
        for gfn in pool.iter().copied().chain(extra.iter().map(|x| x & ((1u64 << (9 * root_level)) - 1))) {
            let want = check_walk(&t, &root, gfn);
            prop_assert_eq!(want[0].level as u32, root_level);
            for w in want.windows(2) {
                prop_assert_eq!(w[1].level, w[0].level - 1);
            }
        }
    }
}

/// The fast path itself loads each SPTE on the path once per attempt, and
/// its one compare-exchange targets the last one with the value read.
#[test]
fn fast_page_fault_reads_each_spte_once() {
    let m = RefMmu::npt(false);
    for root_level in [4u32, 5] {
        for leaf_level in 1..=3u32 {
            let mut t = Tables::new(root_level);
            let gfn = 0xabc_def12 & ((1u64 << (9 * root_level)) - 1);
            t.map(gfn, leaf_level, LEAF); // MMU-writable, not writable
            let ptr = t.slot_ptr(gfn, leaf_level) as u64;
            let root = t.root();
            let path: Vec<u64> = reference_walk(&root, gfn)
                .unwrap()
                .iter()
                .map(|v| v.sptep)
                .collect();
            let section = HookSection::new(t.section());
            let mut dirty = 0;
            let fault = fault_of(&m, gfn, c::PFERR_WRITE_MASK | c::PFERR_PRESENT_MASK, false);
            let out =
                fast_pf::fast_page_fault(&section, &npt_masks(), &root, &fault, || dirty += 1);
            assert_eq!(out.result, FastPfResult::Fixed);
            assert_eq!(dirty, 1);
            let ops = section.ops();
            let loads: Vec<u64> = section.loads().iter().map(|l| l.0).collect();
            assert_eq!(loads, path);
            let old = if leaf_level > 1 {
                LEAF | (1 << 7)
            } else {
                LEAF
            };
            assert_eq!(
                *ops.last().unwrap(),
                Op::Cmpxchg {
                    ptr,
                    old,
                    new: old | 2,
                    ok: true,
                    found: old
                }
            );
            assert_eq!(ops.len(), path.len() + 1);
            assert_eq!(read_host(ptr), old | 2);
        }
    }
}
