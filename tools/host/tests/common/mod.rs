//! Shared by the integration tests: an independent reference model of the C
//! (Linux 7.3 `arch/x86/kvm/mmu/{spte.h,spte.c,mmu.c,tdp_iter.c}`), written
//! from the C and not from `rust/*.rs`, plus `Section` wrappers.
#![allow(dead_code)]

pub mod reference;
pub mod sections;

use kvm_rs_host::spte::{MaskValues, Masks};
use proptest::prelude::*;
use reference::RefMmu;

/// The SPTE mask configurations KVM uses with the TDP MMU: EPT with and
/// without A/D bits, NPT; each with and without `tdp_has_smep` (MBEC /
/// GMET), which changes the permissions table.
pub fn configs() -> Vec<(&'static str, RefMmu)> {
    let mut v = Vec::new();
    for smep in [false, true] {
        v.push((
            if smep { "ept-ad+mbec" } else { "ept-ad" },
            RefMmu::ept(true, smep),
        ));
        v.push((
            if smep { "ept-noad+mbec" } else { "ept-noad" },
            RefMmu::ept(false, smep),
        ));
        v.push((if smep { "npt+gmet" } else { "npt" }, RefMmu::npt(smep)));
    }
    v
}

pub fn config_strategy() -> impl Strategy<Value = RefMmu> {
    let n = configs().len();
    (0..n).prop_map(|i| configs()[i].1.clone())
}

/// Bits that matter to the fast path, under one mask set or another.
pub const INTERESTING_BITS: &[u32] = &[
    0, 1, 2, // P/R, W, U or X
    5, 6, 7, 8, 9, 10, // NPT A, D, PS, EPT A, D/host-writable, XU/MMU-writable
    11, // MMU-present
    52, 53, 54, 55, // 7.3: acc-track saved bits, EPT host/MMU-writable; 6.12: A/D type, saved
    56, 57, // 6.12: saved bits, EPT host-writable
    58, 60, 61, 62, 63, // 6.12 EPT MMU-writable, 7.3 A/D type, NX/suppress-VE
];

/// Random SPTEs biased to the interesting bits and special values.
pub fn spte_strategy() -> impl Strategy<Value = u64> {
    let from_bits = (any::<u32>(), any::<u64>(), any::<bool>()).prop_map(|(sel, pfn, with_pfn)| {
        let mut v = 0u64;
        for (i, b) in INTERESTING_BITS.iter().enumerate() {
            if sel & (1 << i) != 0 {
                v |= 1 << b;
            }
        }
        if with_pfn {
            v |= pfn & reference::SPTE_BASE_ADDR_MASK;
        }
        v
    });
    // A/D type is a two-bit field: make each of its values common.
    let with_ad_type = (from_bits.clone(), 0u64..4).prop_map(|(v, t)| {
        (v & !reference::SPTE_TDP_AD_MASK) | (t << reference::SPTE_TDP_AD_SHIFT)
    });
    prop_oneof![
        3 => with_ad_type,
        2 => from_bits,
        2 => any::<u64>(),
        1 => any::<u64>().prop_map(|v| v | (1 << 11)),
        1 => Just(reference::FROZEN_SPTE),
        1 => Just(reference::SHADOW_NONPRESENT_VALUE),
        1 => Just(0u64),
        1 => any::<u64>().prop_map(|m| reference::FROZEN_SPTE ^ (1 << (m % 64))),
    ]
}

/// Page-fault error codes: P, W, U, RSVD, F in any combination.
pub fn error_code_strategy() -> impl Strategy<Value = u64> {
    0u64..32
}

/// The Rust `Masks` for a reference MMU (values copied, base address mask =
/// the host-test one so tables in host memory can be walked).
pub fn masks_of(m: &RefMmu) -> Masks {
    kvm_rs_host::testing::host_masks(MaskValues {
        nx: m.shadow_nx_mask,
        user: m.shadow_user_mask,
        xs: m.shadow_xs_mask,
        xu: m.shadow_xu_mask,
        mmu_writable: m.shadow_mmu_writable_mask,
        acc_track: m.shadow_acc_track_mask,
        accessed: m.shadow_accessed_mask,
        base_addr: reference::SPTE_BASE_ADDR_MASK,
        ad_enabled: m.kvm_ad_enabled,
    })
}

/// The Rust `Fault` for an error code, as the C glue builds it: 7.3's
/// `permissions[pfec >> 1]` with pfec = error code & (W|U|F), 6.12's
/// `fault->exec`.
pub fn fault_of(
    m: &RefMmu,
    gfn: u64,
    error_code: u64,
    slot_dirty_tracked: bool,
) -> kvm_rs_host::fast_pf::Fault {
    kvm_rs_host::fast_pf::Fault {
        gfn,
        write: error_code & reference::PFERR_WRITE_MASK != 0,
        #[cfg(not(kvm_rs_6_12))]
        permissions: m.permission_row(error_code),
        #[cfg(kvm_rs_6_12)]
        exec: {
            let _ = m;
            error_code & reference::PFERR_FETCH_MASK != 0
        },
        slot_dirty_tracked,
    }
}
