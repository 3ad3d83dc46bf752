//! Property tests of rust/spte.rs and fast_pf::decide against the reference
//! model transliterated from the C (tests/common/reference.rs).

mod common;

use common::reference::{self as c, RefMmu, RefStep, RetPf};
use common::*;
use kvm_rs_host::fast_pf::{decide, Decision};
use kvm_rs_host::spte;
use proptest::prelude::*;

fn decision_of(step: RefStep) -> Decision {
    match step {
        RefStep::Break(RetPf::Invalid) => Decision::GiveUp,
        RefStep::Break(RetPf::Spurious) => Decision::Spurious,
        RefStep::Break(RetPf::Fixed) => unreachable!(),
        RefStep::Fix(v) => Decision::Fix(v),
    }
}

#[test]
fn constants_match_c() {
    assert_eq!(spte::PT_PRESENT_MASK, c::PT_PRESENT_MASK);
    assert_eq!(spte::PT_WRITABLE_MASK, c::PT_WRITABLE_MASK);
    assert_eq!(spte::PT_PAGE_SIZE_MASK, c::PT_PAGE_SIZE_MASK);
    assert_eq!(spte::SPTE_MMU_PRESENT_MASK, c::SPTE_MMU_PRESENT_MASK);
    assert_eq!(spte::SPTE_TDP_AD_MASK, c::SPTE_TDP_AD_MASK);
    assert_eq!(spte::SPTE_TDP_AD_DISABLED, c::SPTE_TDP_AD_DISABLED);
    assert_eq!(
        spte::SHADOW_ACC_TRACK_SAVED_BITS_MASK,
        c::SHADOW_ACC_TRACK_SAVED_BITS_MASK
    );
    assert_eq!(
        spte::SHADOW_ACC_TRACK_SAVED_BITS_SHIFT,
        c::SHADOW_ACC_TRACK_SAVED_BITS_SHIFT
    );
    assert_eq!(spte::SHADOW_NONPRESENT_VALUE, c::SHADOW_NONPRESENT_VALUE);
    assert_eq!(spte::FROZEN_SPTE, c::FROZEN_SPTE);
    assert_eq!(spte::ACC_USER_MASK, c::ACC_USER_MASK);
    assert_eq!(spte::ACC_EXEC_MASK, c::ACC_EXEC_MASK);
    assert_eq!(spte::PT64_ROOT_MAX_LEVEL as i32, c::PT64_ROOT_MAX_LEVEL);
    // testing.rs masks are the C ones.
    assert_eq!(
        kvm_rs_host::testing::npt_masks(),
        masks_of(&RefMmu::npt(false))
    );
    assert_eq!(
        kvm_rs_host::testing::ept_masks(true),
        masks_of(&RefMmu::ept(true, false))
    );
    assert_eq!(
        kvm_rs_host::testing::ept_masks(false),
        masks_of(&RefMmu::ept(false, false))
    );
}

/// The reference permissions table is not vacuous: spot checks by hand.
#[cfg(not(kvm_rs_6_12))]
#[test]
fn reference_permissions_spot_checks() {
    let ept = RefMmu::ept(true, false);
    let r = c::ACC_READ_MASK;
    let w = c::ACC_WRITE_MASK;
    let x = c::ACC_EXEC_MASK;
    // Read fault: faults iff not readable.
    let row = ept.permissions[0];
    assert_eq!(row >> r & 1, 0);
    assert_eq!(row >> w & 1, 1);
    // Write fault (pfec W): faults iff not writable.
    let row = ept.permission_row(c::PFERR_WRITE_MASK | c::PFERR_PRESENT_MASK);
    assert_eq!(row >> (r | w) & 1, 0);
    assert_eq!(row >> r & 1, 1);
    assert_eq!(row >> (r | x) & 1, 1);
    // Fetch fault: faults iff not XS (EPT without MBEC ignores XU).
    let row = ept.permission_row(c::PFERR_FETCH_MASK | c::PFERR_USER_MASK);
    assert_eq!(row >> (r | x) & 1, 0);
    assert_eq!(row >> (r | c::ACC_USER_EXEC_MASK) & 1, 1);
    // With MBEC, a user fetch needs XU.
    let mbec = RefMmu::ept(true, true);
    let row = mbec.permission_row(c::PFERR_FETCH_MASK | c::PFERR_USER_MASK);
    assert_eq!(row >> (r | x) & 1, 1);
    assert_eq!(row >> (r | c::ACC_USER_EXEC_MASK) & 1, 0);
    // NPT: user access to a supervisor page faults; fetch of NX faults.
    let npt = RefMmu::npt(false);
    let row = npt.permission_row(c::PFERR_USER_MASK);
    assert_eq!(row >> (r | x) & 1, 1);
    assert_eq!(row >> (r | x | c::ACC_USER_MASK) & 1, 0);
    let row = npt.permission_row(c::PFERR_FETCH_MASK);
    assert_eq!(row >> r & 1, 1);
    assert_eq!(row >> (r | x) & 1, 0);
    // NPT with GMET: U=0 does not affect user reads.
    let gmet = RefMmu::npt(true);
    let row = gmet.permission_row(c::PFERR_USER_MASK);
    assert_eq!(row >> (r | x) & 1, 0);
}

/// Hand-computed decisions for the cases the fast path exists for.
#[test]
fn decide_known_cases() {
    const MMU_W: u64 = c::EPT_SPTE_MMU_WRITABLE;
    const AD_OFF: u64 = c::SPTE_TDP_AD_DISABLED;
    const SAVED: u32 = c::SHADOW_ACC_TRACK_SAVED_BITS_SHIFT;
    // EPT, dirty logging: MMU-writable, host-writable, R+X, not W.
    let m = RefMmu::ept(true, false);
    let masks = masks_of(&m);
    let wp = (1 << 11) | MMU_W | c::EPT_SPTE_HOST_WRITABLE | 0x5 | 0x1234_5000;
    let wf = fault_of(&m, 0, c::PFERR_WRITE_MASK | c::PFERR_PRESENT_MASK, true);
    assert_eq!(decide(&masks, &wf, wp, 1), Decision::Fix(wp | 2));
    // Huge page in a dirty-logged slot: slow path.
    assert_eq!(decide(&masks, &wf, wp | (1 << 7), 2), Decision::GiveUp);
    // Not dirty-logged: fixable at 2M too.
    let wf_nd = fault_of(&m, 0, c::PFERR_WRITE_MASK | c::PFERR_PRESENT_MASK, false);
    assert_eq!(
        decide(&masks, &wf_nd, wp | (1 << 7), 2),
        Decision::Fix(wp | (1 << 7) | 2)
    );
    // Already writable: spurious.
    assert_eq!(decide(&masks, &wf, wp | 2, 1), Decision::Spurious);
    // Not MMU-writable: give up.
    assert_eq!(decide(&masks, &wf, wp & !MMU_W, 1), Decision::GiveUp);
    // Frozen, zapped: give up.
    assert_eq!(decide(&masks, &wf, spte::FROZEN_SPTE, 1), Decision::GiveUp);
    assert_eq!(
        decide(&masks, &wf, spte::SHADOW_NONPRESENT_VALUE, 1),
        Decision::GiveUp
    );
    // Non-leaf: give up.
    assert_eq!(decide(&masks, &wf, wp, 2), Decision::GiveUp);
    // EPT without A/D: access-tracked SPTE (RWX/XU cleared, R+X saved).
    let m = RefMmu::ept(false, false);
    let masks = masks_of(&m);
    let at = (1 << 11) | AD_OFF | MMU_W | (0x5u64 << SAVED) | 0x7000;
    // 7.3 sets the accessed bit on restore; 6.12 does not (and has no
    // accessed mask without A/D bits).
    #[cfg(not(kvm_rs_6_12))]
    let a = 1 << 8;
    #[cfg(kvm_rs_6_12)]
    let a = 0;
    let rf = fault_of(&m, 0, 0, false);
    assert_eq!(
        decide(&masks, &rf, at, 1),
        Decision::Fix((1 << 11) | AD_OFF | MMU_W | 0x5 | a | 0x7000)
    );
    let wf = fault_of(&m, 0, c::PFERR_WRITE_MASK, false);
    assert_eq!(
        decide(&masks, &wf, at, 1),
        Decision::Fix((1 << 11) | AD_OFF | MMU_W | 0x7 | a | 0x7000)
    );
    // A fetch from a present, non-executable EPT SPTE: 7.3's permission
    // table and 6.12's is_access_allowed() both say it still faults, and
    // nothing in the fast path can grant X.
    let ff = fault_of(&m, 0, c::PFERR_FETCH_MASK, false);
    assert_eq!(
        decide(&masks, &ff, (1 << 11) | MMU_W | 0x3 | 0x7000, 1),
        Decision::GiveUp
    );
}

/// Where the series differ: a read fault on an SPTE that is readable but
/// grants no user access. 7.3 checks the MMU's permission table, in which
/// a user read needs ACC_USER_MASK: it still faults, and the fast path
/// gives up. 6.12's is_access_allowed() asks only for PT_PRESENT_MASK:
/// spurious.
#[test]
fn decide_user_read_differs_between_series() {
    let m = RefMmu::npt(false);
    let masks = masks_of(&m);
    // NPT leaf: MMU-present, present, not user, MMU-writable.
    let leaf = (1 << 11) | 1 | c::DEFAULT_SPTE_MMU_WRITABLE | 0x7000;
    let user_read = fault_of(&m, 0, c::PFERR_USER_MASK, false);
    #[cfg(not(kvm_rs_6_12))]
    assert_eq!(decide(&masks, &user_read, leaf, 1), Decision::GiveUp);
    #[cfg(kvm_rs_6_12)]
    assert_eq!(decide(&masks, &user_read, leaf, 1), Decision::Spurious);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 100000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn prop_predicates(spte in spte_strategy(), level in 1u32..=5, m in config_strategy()) {
        let masks = masks_of(&m);
        prop_assert_eq!(spte::is_shadow_present(spte), c::is_shadow_present_pte(spte));
        prop_assert_eq!(spte::is_large(spte), c::is_large_pte(spte));
        prop_assert_eq!(spte::is_last(spte, level), c::is_last_spte(spte, level as i32));
        prop_assert_eq!(spte::is_writable(spte), c::is_writable_pte(spte));
        prop_assert_eq!(spte::is_frozen(spte), c::is_frozen_spte(spte));
        prop_assert_eq!(masks.is_mmu_writable(spte), m.is_mmu_writable_spte(spte));
        prop_assert_eq!(masks.spte_ad_enabled(spte), c::spte_ad_enabled(spte));
        prop_assert_eq!(masks.is_access_track(spte), m.is_access_track_spte(spte));
        prop_assert_eq!(masks.restore_acc_track(spte), m.restore_acc_track_spte(spte));
        prop_assert_eq!(masks.pte_access(spte), m.pte_access(spte));
        prop_assert_eq!(masks.is_executable(spte), m.is_executable_pte(spte));
        prop_assert_eq!(masks.child_pt_pa(spte, level), m.spte_to_child_pt(spte, level as i32));
    }

    #[cfg(not(kvm_rs_6_12))]
    #[test]
    fn prop_permission_fault(spte in spte_strategy(), ec in error_code_strategy(), m in config_strategy()) {
        let masks = masks_of(&m);
        prop_assert_eq!(masks.permission_fault(spte, m.permission_row(ec)), m.spte_permission_fault(spte, ec));
    }

    #[test]
    fn prop_decide(spte in spte_strategy(), level in 1u32..=5, ec in error_code_strategy(),
                   dirty in any::<bool>(), m in config_strategy()) {
        let masks = masks_of(&m);
        let fault = fault_of(&m, 0, ec, dirty);
        let got = decide(&masks, &fault, spte, level);
        let want = decision_of(m.fast_page_fault_body(spte, level as i32, ec, dirty));
        prop_assert_eq!(got, want, "spte {:#x} level {} ec {:#x}", spte, level, ec);
        if let Decision::Fix(new) = got {
            // Invariants the fix path relies on.
            prop_assert!(new != spte);
            prop_assert!(spte::is_shadow_present(spte) && !spte::is_frozen(spte));
            prop_assert!(!m.still_faults(new, ec));
            prop_assert!(spte::is_shadow_present(new));
            // Only W, the restored acc-track bits and Accessed may change.
            let changeable = 2 | m.shadow_acc_track_mask
                | (c::SHADOW_ACC_TRACK_SAVED_BITS_MASK << c::SHADOW_ACC_TRACK_SAVED_BITS_SHIFT)
                | c::SHADOW_ACC_TRACK_SAVED_BITS_MASK | m.shadow_accessed_mask;
            prop_assert_eq!((new ^ spte) & !changeable, 0);
            // `Fix`'s invariant: a leaf at the same level, same address, so
            // no walk can read the stored value as a table pointer.
            prop_assert!(spte::is_last(new, level));
            prop_assert_eq!((new ^ spte) & (spte::PT_PAGE_SIZE_MASK | spte::SPTE_MMU_PRESENT_MASK
                | kvm_rs_host::testing::BASE_ADDR_MASK), 0);
            // W is only ever set for a write fault on an MMU-writable SPTE.
            if spte::is_writable(new) && !spte::is_writable(spte) {
                prop_assert!(fault.write && masks.is_mmu_writable(spte));
                prop_assert!(level == 1 || !dirty);
            }
        }
    }

    #[test]
    fn prop_spte_index(gfn in any::<u64>(), level in 1u32..=5) {
        prop_assert_eq!(spte::spte_index(gfn, level) as u64, c::spte_index_of_address(gfn << 12, level as i32));
    }
}

/// Exhaustive over 2^15 combinations of the bits that steer the decision,
/// all levels, W/U/F error codes, dirty tracking and mask configurations.
#[test]
fn exhaustive_decide_over_interesting_bits() {
    #[cfg(not(kvm_rs_6_12))]
    const BITS: &[u32] = &[0, 1, 2, 7, 8, 10, 11, 52, 53, 54, 55, 60, 61, 62, 63];
    // 6.12: A/D type 53:52, saved bits 56:54, MMU-writable 58.
    #[cfg(kvm_rs_6_12)]
    const BITS: &[u32] = &[0, 1, 2, 7, 8, 10, 11, 52, 53, 54, 55, 56, 58, 62, 63];
    let mut n = 0u64;
    let mut fixes = 0u64;
    for (name, m) in configs() {
        let masks = masks_of(&m);
        for sel in 0u32..(1 << BITS.len()) {
            let mut spte = 0x5_5000u64;
            for (i, b) in BITS.iter().enumerate() {
                if sel & (1 << i) != 0 {
                    spte |= 1 << b;
                }
            }
            for level in 1..=5u32 {
                for ec in [0, 2, 4, 6, 16, 20, 1, 3, 5, 7, 17, 21] {
                    for dirty in [false, true] {
                        let fault = fault_of(&m, 0, ec, dirty);
                        let got = decide(&masks, &fault, spte, level);
                        let want = decision_of(m.fast_page_fault_body(
                            spte as u64,
                            level as i32,
                            ec,
                            dirty,
                        ));
                        assert_eq!(
                            got, want,
                            "{name}: spte {spte:#x} level {level} ec {ec:#x} dirty {dirty}"
                        );
                        n += 1;
                        fixes += matches!(got, Decision::Fix(_)) as u64;
                    }
                }
            }
        }
    }
    // The space is not degenerate: plenty of fixable faults were checked.
    assert!(fixes > n / 100, "{fixes} fixes of {n}");
}
