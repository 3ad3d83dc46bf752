// SPDX-License-Identifier: GPL-2.0

//! SPTE bit semantics of KVM's x86 MMU, as used by the TDP fast page fault.
//!
//! Mirrors `arch/x86/kvm/mmu/spte.h` and `mmu.h` of Linux 7.3, or of 6.12
//! with `cfg(kvm_rs_6_12)` (set by the Makefile change of `patches/6.12/`,
//! the series a 6.12 tree builds with; see [`SERIES`]). Where the two
//! differ, both are stated here, side by side. The fixed bits are
//! constants; the bits KVM chooses at vendor-module load time (EPT or NPT,
//! A/D bits on or off) come in a [`Masks`] value built (`unsafe`) from
//! KVM's globals by the kernel glue, or by a host test for its own tables.
//!
//! Everything here is plain arithmetic on `u64`: no `kernel::` items, no
//! operation that can panic, so the host test crate compiles this file as is.

/// The kernel series whose KVM this build follows, as (version, patchlevel).
#[cfg(not(kvm_rs_6_12))]
pub const SERIES: (u32, u32) = (7, 3);
/// The kernel series whose KVM this build follows, as (version, patchlevel).
#[cfg(kvm_rs_6_12)]
pub const SERIES: (u32, u32) = (6, 12);

/// `PT_PRESENT_MASK`: bit 0, also `ACC_READ_MASK` and the EPT readable bit.
pub const PT_PRESENT_MASK: u64 = 1 << 0;
/// `PT_WRITABLE_MASK`: bit 1, also `ACC_WRITE_MASK` and the EPT writable bit.
pub const PT_WRITABLE_MASK: u64 = 1 << 1;
/// `PT_PAGE_SIZE_MASK`: bit 7, set in a huge (non-4K) leaf SPTE.
pub const PT_PAGE_SIZE_MASK: u64 = 1 << 7;
/// `SPTE_MMU_PRESENT_MASK`: software bit 11, set in every shadow-present SPTE.
pub const SPTE_MMU_PRESENT_MASK: u64 = 1 << 11;

/// `SPTE_TDP_AD_SHIFT`: where the A/D type of a TDP SPTE is kept (bits
/// 61:60 in 7.3, 53:52 in 6.12).
#[cfg(not(kvm_rs_6_12))]
pub const SPTE_TDP_AD_SHIFT: u32 = 60;
/// `SPTE_TDP_AD_SHIFT`: where the A/D type of a TDP SPTE is kept (bits
/// 61:60 in 7.3, 53:52 in 6.12).
#[cfg(kvm_rs_6_12)]
pub const SPTE_TDP_AD_SHIFT: u32 = 52;
/// `SPTE_TDP_AD_MASK`: the two A/D type bits.
pub const SPTE_TDP_AD_MASK: u64 = 3 << SPTE_TDP_AD_SHIFT;
/// `SPTE_TDP_AD_DISABLED`: the SPTE is access-tracked by KVM, not by A/D bits.
pub const SPTE_TDP_AD_DISABLED: u64 = 1 << SPTE_TDP_AD_SHIFT;

/// `VMX_EPT_READABLE_MASK`.
pub const VMX_EPT_READABLE_MASK: u64 = 0x1;
/// `VMX_EPT_EXECUTABLE_MASK`.
pub const VMX_EPT_EXECUTABLE_MASK: u64 = 0x4;
/// `VMX_EPT_USER_EXECUTABLE_MASK` (MBEC).
pub const VMX_EPT_USER_EXECUTABLE_MASK: u64 = 1 << 10;
/// `SHADOW_ACC_TRACK_SAVED_BITS_MASK`: the R/X bits an access-tracked SPTE
/// saves (7.3 also saves the MBEC user-executable bit).
#[cfg(not(kvm_rs_6_12))]
pub const SHADOW_ACC_TRACK_SAVED_BITS_MASK: u64 =
    VMX_EPT_READABLE_MASK | VMX_EPT_EXECUTABLE_MASK | VMX_EPT_USER_EXECUTABLE_MASK;
/// `SHADOW_ACC_TRACK_SAVED_BITS_MASK`: the R/X bits an access-tracked SPTE
/// saves (6.12 has no MBEC bit).
#[cfg(kvm_rs_6_12)]
pub const SHADOW_ACC_TRACK_SAVED_BITS_MASK: u64 = VMX_EPT_READABLE_MASK | VMX_EPT_EXECUTABLE_MASK;
/// `SHADOW_ACC_TRACK_SAVED_BITS_SHIFT`: where they are saved (bit 52 in
/// 7.3, 54 in 6.12).
#[cfg(not(kvm_rs_6_12))]
pub const SHADOW_ACC_TRACK_SAVED_BITS_SHIFT: u32 = 52;
/// `SHADOW_ACC_TRACK_SAVED_BITS_SHIFT`: where they are saved (bit 52 in
/// 7.3, 54 in 6.12).
#[cfg(kvm_rs_6_12)]
pub const SHADOW_ACC_TRACK_SAVED_BITS_SHIFT: u32 = 54;

/// `SHADOW_NONPRESENT_VALUE` on x86-64: bit 63 (suppresses #VE for TDX).
pub const SHADOW_NONPRESENT_VALUE: u64 = 1 << 63;
/// `FROZEN_SPTE`: the value a TDP MMU writer parks in an SPTE while it does a
/// multi-step update. Nobody else may write over it.
#[cfg(not(kvm_rs_6_12))]
pub const FROZEN_SPTE: u64 = SHADOW_NONPRESENT_VALUE | 0x1a0;
/// `FROZEN_SPTE` of 6.12 (a different low pattern from 7.3's).
#[cfg(kvm_rs_6_12)]
pub const FROZEN_SPTE: u64 = SHADOW_NONPRESENT_VALUE | 0x5a0;

/// `ACC_USER_MASK` (also `ACC_USER_EXEC_MASK` for EPT with MBEC).
pub const ACC_USER_MASK: u32 = 1 << 2;
/// `ACC_EXEC_MASK`.
pub const ACC_EXEC_MASK: u32 = 8;

/// `PG_LEVEL_4K`.
pub const PG_LEVEL_4K: u32 = 1;
/// `PT64_ROOT_MAX_LEVEL`: a 5-level root.
pub const PT64_ROOT_MAX_LEVEL: u32 = 5;
/// `SPTE_LEVEL_BITS`: index bits per level.
pub const SPTE_LEVEL_BITS: u32 = 9;
/// `SPTE_ENT_PER_PAGE - 1`: mask of an index into one page table.
pub const SPTE_INDEX_MASK: u64 = (1 << SPTE_LEVEL_BITS) - 1;
/// `PAGE_SHIFT`.
pub const PAGE_SHIFT: u32 = 12;

/// The values of the SPTE bits KVM chooses at run time (`shadow_*_mask` and
/// friends in `arch/x86/kvm/mmu/spte.c`), as plain data. A [`Masks`] is
/// built from them by the `unsafe fn` [`Masks::new`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaskValues {
    /// `shadow_nx_mask`: non-zero for NPT and shadow paging, zero for EPT.
    pub nx: u64,
    /// `shadow_user_mask`.
    pub user: u64,
    /// `shadow_xs_mask`: EPT supervisor-executable. In 6.12, which has no
    /// MBEC, `shadow_x_mask`: the EPT executable bit.
    pub xs: u64,
    /// `shadow_xu_mask`: EPT user-executable (MBEC). 0 in 6.12.
    pub xu: u64,
    /// `shadow_mmu_writable_mask`: the software "MMU-writable" bit.
    pub mmu_writable: u64,
    /// `shadow_acc_track_mask`: bits cleared to access-track an SPTE.
    pub acc_track: u64,
    /// `shadow_accessed_mask`.
    pub accessed: u64,
    /// `SPTE_BASE_ADDR_MASK`: the physical address bits of an SPTE.
    pub base_addr: u64,
    /// `kvm_ad_enabled`: KVM uses hardware A/D bits (in 6.12 the function
    /// `kvm_ad_enabled()`, `!!shadow_accessed_mask`).
    pub ad_enabled: bool,
}

/// The SPTE bits KVM chose at run time, as the walk and the decision use
/// them.
///
/// # Invariants
///
/// The values are the ones KVM set for the SPTEs being walked (see
/// [`Masks::new`]): the walk follows an SPTE as a table pointer, and the
/// fast path makes an SPTE writable, only as KVM's own C would. In
/// particular, as KVM's values always do:
///
/// - `accessed` and `acc_track` share no bit with `PT_PAGE_SIZE_MASK`,
///   `SPTE_MMU_PRESENT_MASK` or `base_addr`, nor does the saved copy of
///   the access-tracked bits, so restoring an access-tracked SPTE or
///   setting its accessed or writable bit keeps a leaf a leaf, at the same
///   address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Masks {
    nx: u64,
    user: u64,
    xs: u64,
    xu: u64,
    mmu_writable: u64,
    acc_track: u64,
    accessed: u64,
    base_addr: u64,
    ad_enabled: bool,
}

/// `is_shadow_present_pte()`.
#[inline(always)]
pub const fn is_shadow_present(spte: u64) -> bool {
    spte & SPTE_MMU_PRESENT_MASK != 0
}

/// `is_large_pte()`.
#[inline(always)]
pub const fn is_large(spte: u64) -> bool {
    spte & PT_PAGE_SIZE_MASK != 0
}

/// `is_last_spte()`: the SPTE maps memory rather than a lower page table.
#[inline(always)]
pub const fn is_last(spte: u64, level: u32) -> bool {
    level == PG_LEVEL_4K || is_large(spte)
}

/// `is_writable_pte()`.
#[inline(always)]
pub const fn is_writable(spte: u64) -> bool {
    spte & PT_WRITABLE_MASK != 0
}

/// `is_frozen_spte()`.
#[inline(always)]
pub const fn is_frozen(spte: u64) -> bool {
    spte == FROZEN_SPTE
}

impl Masks {
    /// KVM's masks, from `values`.
    ///
    /// # Safety
    ///
    /// - `values` are the masks KVM set (`kvm_mmu_set_ept_masks()` or
    ///   `kvm_mmu_reset_all_pte_masks()`) for the SPTEs of every [`Root`]
    ///   walked with the result; in particular `base_addr` is
    ///   `SPTE_BASE_ADDR_MASK`, so that the address [`Masks::child_pt_pa`]
    ///   takes from a non-leaf SPTE is that of its child table, and
    ///   `mmu_writable` and the access-tracking masks are KVM's, so that the
    ///   fast path makes writable only what KVM allows to be;
    /// - `accessed` and `acc_track` share no bit with `PT_PAGE_SIZE_MASK`,
    ///   `SPTE_MMU_PRESENT_MASK` or `base_addr` (true of every value KVM
    ///   sets).
    ///
    /// [`Root`]: crate::tdp_mmu::Root
    #[inline(always)]
    pub const unsafe fn new(values: MaskValues) -> Self {
        let MaskValues {
            nx,
            user,
            xs,
            xu,
            mmu_writable,
            acc_track,
            accessed,
            base_addr,
            ad_enabled,
        } = values;
        // INVARIANT: the caller guarantees these are KVM's values.
        Self {
            nx,
            user,
            xs,
            xu,
            mmu_writable,
            acc_track,
            accessed,
            base_addr,
            ad_enabled,
        }
    }

    /// The values, as [`Masks::new`] took them.
    #[inline(always)]
    pub const fn values(&self) -> MaskValues {
        MaskValues {
            nx: self.nx,
            user: self.user,
            xs: self.xs,
            xu: self.xu,
            mmu_writable: self.mmu_writable,
            acc_track: self.acc_track,
            accessed: self.accessed,
            base_addr: self.base_addr,
            ad_enabled: self.ad_enabled,
        }
    }

    /// `kvm_ad_enabled`: KVM uses hardware A/D bits.
    #[inline(always)]
    pub const fn ad_enabled(&self) -> bool {
        self.ad_enabled
    }

    /// `is_mmu_writable_spte()`: KVM may make this SPTE writable without
    /// the MMU lock (it is write-protected only for dirty logging or access
    /// tracking, not for shadowing).
    #[inline(always)]
    pub const fn is_mmu_writable(&self, spte: u64) -> bool {
        spte & self.mmu_writable != 0
    }

    /// `spte_ad_enabled()`. Only meaningful for a shadow-present SPTE.
    #[inline(always)]
    pub const fn spte_ad_enabled(&self, spte: u64) -> bool {
        spte & SPTE_TDP_AD_MASK != SPTE_TDP_AD_DISABLED
    }

    /// `is_access_track_spte()`.
    #[inline(always)]
    pub const fn is_access_track(&self, spte: u64) -> bool {
        !self.spte_ad_enabled(spte) && spte & self.acc_track == 0
    }

    /// `restore_acc_track_spte()`: put back the R/X bits that access
    /// tracking saved in the high bits. (7.3's C function also sets the
    /// accessed bit: [`Masks::restore_for_fix`] is what a fix installs.)
    #[inline(always)]
    pub const fn restore_acc_track(&self, spte: u64) -> u64 {
        let saved = (spte >> SHADOW_ACC_TRACK_SAVED_BITS_SHIFT) & SHADOW_ACC_TRACK_SAVED_BITS_MASK;
        let spte = spte & !self.acc_track;
        let spte = spte & !(SHADOW_ACC_TRACK_SAVED_BITS_MASK << SHADOW_ACC_TRACK_SAVED_BITS_SHIFT);
        spte | saved
    }

    /// What `fast_page_fault()` makes of an access-tracked SPTE it fixes:
    /// 7.3 restores it and sets the accessed bit
    /// (`restore_acc_track_spte(new_spte) | shadow_accessed_mask`, as its
    /// `restore_acc_track_spte()` does); 6.12 restores it alone (its A/D
    /// rework, which added the accessed bit, came in 6.13).
    #[inline(always)]
    pub const fn restore_for_fix(&self, spte: u64) -> u64 {
        #[cfg(not(kvm_rs_6_12))]
        let restored = self.restore_acc_track(spte) | self.accessed;
        #[cfg(kvm_rs_6_12)]
        let restored = self.restore_acc_track(spte);
        restored
    }

    /// `is_executable_pte()` of 6.12: `(spte & (shadow_x_mask |
    /// shadow_nx_mask)) == shadow_x_mask` (`xs` holds `shadow_x_mask`).
    #[inline(always)]
    pub const fn is_executable(&self, spte: u64) -> bool {
        spte & (self.xs | self.nx) == self.xs
    }

    /// The `ACC_*` access bits a shadow-present SPTE grants, as computed by
    /// `spte_permission_fault()`.
    #[inline(always)]
    pub const fn pte_access(&self, spte: u64) -> u32 {
        // Bits 0 and 1 are ACC_READ_MASK and ACC_WRITE_MASK.
        let mut access = (spte & (PT_PRESENT_MASK | PT_WRITABLE_MASK)) as u32;
        if self.nx != 0 {
            if spte & self.user != 0 {
                access |= ACC_USER_MASK;
            }
            if spte & self.nx == 0 {
                access |= ACC_EXEC_MASK;
            }
        } else {
            if spte & self.xs != 0 {
                access |= ACC_EXEC_MASK;
            }
            if spte & self.xu != 0 {
                access |= ACC_USER_MASK;
            }
        }
        access
    }

    /// `spte_permission_fault()`: would the faulting access still fault on
    /// `spte`? `permissions` is the row `mmu->fmt.permissions[pfec >> 1]` of
    /// the fault's error code (write/user/fetch bits).
    #[inline(always)]
    pub const fn permission_fault(&self, spte: u64, permissions: u16) -> bool {
        if !is_shadow_present(spte) {
            return true;
        }
        // pte_access() < 16, so the shift is in range.
        (permissions >> self.pte_access(spte)) & 1 != 0
    }

    /// The physical address of the page table a non-leaf SPTE points to
    /// (`spte_to_pfn(spte) << PAGE_SHIFT`), or `None` if `spte` at `level`
    /// has no child table (`spte_to_child_pt()` returning NULL).
    #[inline(always)]
    pub const fn child_pt_pa(&self, spte: u64, level: u32) -> Option<u64> {
        if !is_shadow_present(spte) || is_last(spte, level) {
            return None;
        }
        Some(spte & self.base_addr)
    }
}

/// `SPTE_INDEX()`: the index of `gfn`'s entry in a page table at `level`
/// (1..=5), always below 512.
///
/// Why wrapping operations: `gfn << PAGE_SHIFT` drops the gfn's top bits as
/// the C's `gfn_to_gpa()` does (a guest-chosen gfn may have them set); for
/// `level` in 1..=5 the shift is 12..=48, computed without wrapping, and
/// `wrapping_shr()` only keeps a level outside that range (which the walk
/// never passes) from being a panic branch.
#[inline(always)]
pub const fn spte_index(gfn: u64, level: u32) -> usize {
    let addr = gfn.wrapping_shl(PAGE_SHIFT);
    let shift = PAGE_SHIFT.wrapping_add(level.wrapping_sub(1).wrapping_mul(SPTE_LEVEL_BITS));
    // Masked to 9 bits: the cast cannot truncate.
    (addr.wrapping_shr(shift) & SPTE_INDEX_MASK) as usize
}
