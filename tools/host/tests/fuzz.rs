//! Fuzz-style: the whole input range (any gfn, root level, gfn_bits, masks,
//! SPTE contents that change on every read) over a fake section that never
//! dereferences anything. No panic; every load is at the address the walk
//! derives; the only writes are compare-exchanges of the last SPTE read.
//!
//! How much to run, from the environment (see `fuzz.sh`):
//! - `KVMRS_FUZZ_CASES`: cases per test (default 100000);
//! - `KVMRS_FUZZ_SECONDS`: run each test for this long instead, in batches
//!   of 10000 cases with successive seeds;
//! - `KVMRS_FUZZ_SEED`: first seed (default: random; printed).
//!
//! Each test prints one `fuzz: <test>: N executions ...` line to stderr
//! (shown with `cargo test -- --nocapture`).

mod common;

use common::sections::{FakeSection, Op};
use common::*;
use core::mem::MaybeUninit;
use kvm_rs_host::fast_pf::{self, decide, Decision, FastPfResult, Fault, MAX_RETRIES};
use kvm_rs_host::spte::{self, MaskValues, Masks};
use kvm_rs_host::tdp_mmu::{fast_pf_get_last_sptep, get_walk, Root, WalkError};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseResult, TestError, TestRunner};
use std::cell::Cell;
use std::fmt::Debug;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?}: not a number")),
    )
}

/// Runs `test` on values of `strategy`, for `KVMRS_FUZZ_CASES` cases or
/// `KVMRS_FUZZ_SECONDS` seconds; panics with the shrunk input on failure.
/// Prints the number of executions (calls of `test`: passing cases, plus
/// the failing case and its shrinking steps on failure).
fn fuzz<S: Strategy>(name: &str, strategy: S, test: impl Fn(S::Value) -> TestCaseResult)
where
    S::Value: Debug,
{
    let seconds = env_u64("KVMRS_FUZZ_SECONDS");
    let cases = env_u64("KVMRS_FUZZ_CASES").unwrap_or(100_000);
    let seed = env_u64("KVMRS_FUZZ_SEED").unwrap_or_else(|| {
        let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        (t.as_nanos() as u64) ^ ((std::process::id() as u64) << 32)
    });
    let start = Instant::now();
    let deadline = seconds.map(|s| start + Duration::from_secs(s));
    let execs = Cell::new(0u64);
    let mut passed = 0u64;
    let mut batch = 0u64;
    loop {
        let n = match deadline {
            Some(_) => 10_000,
            None => (cases - passed).min(u32::MAX as u64),
        };
        if n == 0 {
            break;
        }
        let batch_seed = seed.wrapping_add(batch);
        let config = Config {
            cases: n as u32,
            failure_persistence: None,
            rng_seed: RngSeed::Fixed(batch_seed),
            ..Config::default()
        };
        let mut runner = TestRunner::new(config);
        let result = runner.run(&strategy, |v| {
            execs.set(execs.get() + 1);
            test(v)
        });
        batch += 1;
        match result {
            Ok(()) => passed += n,
            Err(TestError::Fail(why, input)) => panic!(
                "fuzz: {name}: FAILED after {} executions (batch seed {batch_seed}, \
                 rerun with KVMRS_FUZZ_SEED={batch_seed}): {why}\nminimal input: {input:#?}",
                execs.get()
            ),
            Err(e) => panic!(
                "fuzz: {name}: aborted after {} executions: {e}",
                execs.get()
            ),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "fuzz: {name}: {} executions, {passed} cases passed, in {secs:.2} s ({:.0}/s); \
         seed {seed}, {batch} batch(es)",
        execs.get(),
        execs.get() as f64 / secs
    );
}

fn masks_strategy() -> impl Strategy<Value = Masks> {
    let arbitrary = (any::<[u64; 8]>(), any::<bool>()).prop_map(|(v, ad)| {
        let values = MaskValues {
            nx: v[0],
            user: v[1],
            xs: v[2],
            xu: v[3],
            mmu_writable: v[4],
            acc_track: v[5],
            accessed: v[6],
            base_addr: v[7],
            ad_enabled: ad,
        };
        // SAFETY: these masks are only used with `FakeSection`, which
        // accesses no memory: any address a walk derives from them is an
        // SPTE address for it.
        unsafe { Masks::new(values) }
    });
    prop_oneof![3 => config_strategy().prop_map(|m| masks_of(&m)), 1 => arbitrary]
}

fn root_strategy() -> impl Strategy<Value = Root<'static>> {
    let spt = prop_oneof![
        1 => Just(core::ptr::null_mut()),
        8 => any::<u64>().prop_map(|a| a as *mut u64),
        4 => (1u64..1 << 40).prop_map(|a| (a << 12) as *mut u64),
    ];
    let level = prop_oneof![4 => 1u32..=5, 2 => 0u32..=255, 1 => any::<u32>()];
    let gfn_bits =
        prop_oneof![3 => Just(0u64), 2 => (0u32..64).prop_map(|b| 1u64 << b), 1 => any::<u64>()];
    (spt, level, gfn_bits).prop_map(|(spt, level, gfn_bits)| {
        // SAFETY: these roots are only walked in a `FakeSection`, which
        // accesses no memory: any address is a table for it.
        unsafe { Root::new(spt, level, gfn_bits) }
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

/// Outcomes of successive compare-exchanges (missing ones succeed).
/// Sometimes all lost, else the retry-exhaustion path (MAX_RETRIES + 1
/// lost exchanges in a row) is practically never generated.
fn cas_ok_strategy() -> impl Strategy<Value = Vec<bool>> {
    prop_oneof![
        3 => proptest::collection::vec(any::<bool>(), 0..8),
        1 => Just(vec![false; MAX_RETRIES as usize + 1]),
    ]
}

/// Replays the fake section's log against the walk rules; returns the
/// number of successful exchanges that set W.
fn check_log(
    ops: &[Op],
    masks: &Masks,
    root: &Root,
    fault: &Fault,
    max_walks: usize,
    decided: bool,
) -> u32 {
    let base_addr = masks.values().base_addr;
    let valid = root.spt().is_some()
        && (1..=5).contains(&root.level())
        && !(root.gfn_bits() != 0 && fault.gfn >= root.gfn_bits());
    if !valid {
        assert!(ops.is_empty(), "no access for a walk that cannot start");
        return 0;
    }
    let addr_gfn = fault.gfn | root.gfn_bits();
    let idx = |level: u32| spte::spte_index(addr_gfn, level) as u64 * 8;
    let mut i = 0;
    let mut walks = 0;
    let mut w_transitions = 0;
    while i < ops.len() {
        walks += 1;
        assert!(walks <= max_walks, "too many walks");
        // One walk.
        let mut level = root.level();
        let mut table = root.spt().unwrap().as_ptr() as u64;
        let (last_ptr, last_val) = loop {
            let Op::Load { ptr, val } = ops[i] else {
                panic!("expected a load at {i}: {ops:?}")
            };
            let want_ptr = table.wrapping_add(idx(level));
            assert_eq!(ptr, want_ptr, "load at {ptr:#x}, walk says {want_ptr:#x}");
            i += 1;
            if level == 1
                || !spte::is_shadow_present(val)
                || spte::is_large(val)
                || val & base_addr == 0
            {
                break (ptr, val);
            }
            table = val & base_addr;
            level -= 1;
        };
        if i == ops.len() {
            // Gave up or spurious: no write (a walk alone decides nothing).
            assert!(!decided || !matches!(decide(masks, fault, last_val, level), Decision::Fix(_)));
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

#[test]
fn fuzz_fast_page_fault() {
    let strategy = (
        masks_strategy(),
        root_strategy(),
        gfn_strategy(),
        proptest::collection::vec(value_strategy(), 1..12),
        cas_ok_strategy(),
        any::<u16>(),
        any::<bool>(),
        any::<bool>(),
    );
    // How the runs ended: invalid root, gfn out of range, slow path
    // (walk ended on a non-fixable SPTE), spurious, fixed, retries exhausted.
    let outcomes = [const { Cell::new(0u64) }; 6];
    fuzz(
        "fuzz_fast_page_fault",
        strategy,
        |(masks, root, gfn, values, cas_ok, permissions, write, dirty)| {
            let section = FakeSection::new(values, cas_ok);
            // 7.3: an arbitrary permission row; 6.12: its low bit as
            // `fault->exec`.
            let fault = Fault {
                gfn,
                write,
                #[cfg(not(kvm_rs_6_12))]
                permissions,
                #[cfg(kvm_rs_6_12)]
                exec: permissions & 1 != 0,
                slot_dirty_tracked: dirty,
            };
            let mut marks = 0u32;
            let out = fast_pf::fast_page_fault(&section, &masks, &root, &fault, || marks += 1);
            let kind = match (&out.last, out.result) {
                (Err(WalkError::InvalidRoot), _) => 0,
                (Err(WalkError::GfnOutOfRange), _) => 1,
                (Ok(_), _) if out.retries_exhausted => 5,
                (Ok(_), FastPfResult::Invalid) => 2,
                (Ok(_), FastPfResult::Spurious) => 3,
                (Ok(_), FastPfResult::Fixed) => 4,
            };
            outcomes[kind].set(outcomes[kind].get() + 1);
            let ops = section.ops.borrow().clone();
            let transitions =
                check_log(&ops, &masks, &root, &fault, MAX_RETRIES as usize + 1, true);
            prop_assert_eq!(marks, transitions);
            let cas: Vec<_> = ops
                .iter()
                .filter(|o| matches!(o, Op::Cmpxchg { .. }))
                .collect();
            let fixed = cas
                .iter()
                .any(|o| matches!(o, Op::Cmpxchg { ok: true, .. }));
            let n_cas = cas.len();
            prop_assert!(n_cas <= MAX_RETRIES as usize + 1);
            prop_assert_eq!(out.result == FastPfResult::Fixed, fixed);
            prop_assert_eq!(
                out.retries_exhausted,
                n_cas == MAX_RETRIES as usize + 1 && !fixed
            );
            match out.last {
                Err(WalkError::InvalidRoot) => {
                    prop_assert!(root.spt().is_none() || !(1..=5).contains(&root.level()))
                }
                Err(WalkError::GfnOutOfRange) => {
                    prop_assert!(root.gfn_bits() != 0 && gfn >= root.gfn_bits())
                }
                Ok(last) => prop_assert!((1..=root.level()).contains(&last.level())),
            }
            Ok(())
        },
    );
    let [root, range, slow, spurious, fixed, exhausted] = outcomes.map(Cell::into_inner);
    eprintln!(
        "fuzz: fuzz_fast_page_fault: outcomes: invalid root {root}, gfn out of range {range}, \
         slow path {slow}, spurious {spurious}, fixed {fixed}, retries exhausted {exhausted}"
    );
}

#[test]
fn fuzz_walks() {
    let strategy = (
        masks_strategy(),
        root_strategy(),
        gfn_strategy(),
        proptest::collection::vec(value_strategy(), 1..12),
    );
    fuzz("fuzz_walks", strategy, |(masks, root, gfn, values)| {
        let section = FakeSection::new(values.clone(), vec![]);
        let fault = Fault {
            gfn,
            ..Fault::default()
        };
        let r = fast_pf_get_last_sptep(&section, &masks, &root, gfn);
        let ops = section.ops.borrow().clone();
        check_log(&ops, &masks, &root, &fault, 1, false);
        let all_loads = ops.iter().all(|o| matches!(o, Op::Load { .. }));
        prop_assert!(all_loads);
        prop_assert!(ops.len() <= 5);
        let section = FakeSection::new(values, vec![]);
        let mut sptes = [MaybeUninit::new(0x5a5a_u64); 6];
        let g = get_walk(&section, &masks, &root, gfn, &mut sptes);
        // SAFETY: initialised above; get_walk only writes elements.
        let sptes = sptes.map(|s| unsafe { s.assume_init() });
        prop_assert_eq!(g.ok(), r.ok().map(|l| l.level()));
        let loads = section.ops.borrow().len();
        prop_assert_eq!(loads, ops.len());
        prop_assert_eq!(sptes[0], 0x5a5a_u64);
        Ok(())
    });
}
