//! Reference model: a line-by-line transliteration of the C of Linux 7.3,
//! or of 6.12 with `cfg(kvm_rs_6_12)` (`cargo test --features linux-6-12`):
//! where the two series' C differs, both are transliterated.
//! Nothing here uses `kvm_rs_host::spte` or the other modules under test.

// ---- arch/x86/include/asm/vmx.h ----
pub const VMX_EPT_READABLE_MASK: u64 = 0x1;
pub const VMX_EPT_WRITABLE_MASK: u64 = 0x2;
pub const VMX_EPT_EXECUTABLE_MASK: u64 = 0x4;
pub const VMX_EPT_RWX_MASK: u64 =
    VMX_EPT_READABLE_MASK | VMX_EPT_WRITABLE_MASK | VMX_EPT_EXECUTABLE_MASK;
pub const VMX_EPT_ACCESS_BIT: u64 = 1 << 8;
pub const VMX_EPT_DIRTY_BIT: u64 = 1 << 9;
pub const VMX_EPT_USER_EXECUTABLE_MASK: u64 = 1 << 10;
pub const VMX_EPT_SUPPRESS_VE_BIT: u64 = 1 << 63;

// ---- arch/x86/kvm/mmu.h ----
pub const PT_PRESENT_MASK: u64 = 1 << 0;
pub const PT_WRITABLE_MASK: u64 = 1 << 1;
pub const PT_USER_MASK: u64 = 1 << 2;
pub const PT_ACCESSED_MASK: u64 = 1 << 5;
pub const PT_DIRTY_MASK: u64 = 1 << 6;
pub const PT_PAGE_SIZE_MASK: u64 = 1 << 7;
pub const PT64_NX_MASK: u64 = 1 << 63;
pub const ACC_READ_MASK: u32 = PT_PRESENT_MASK as u32;
pub const ACC_WRITE_MASK: u32 = PT_WRITABLE_MASK as u32;
pub const ACC_USER_MASK: u32 = PT_USER_MASK as u32;
pub const ACC_USER_EXEC_MASK: u32 = ACC_USER_MASK;
pub const ACC_EXEC_MASK: u32 = 8;
pub const PG_LEVEL_4K: i32 = 1;
pub const PT64_ROOT_MAX_LEVEL: i32 = 5;

// ---- arch/x86/include/asm/kvm_host.h ----
pub const PFERR_PRESENT_MASK: u64 = 1 << 0;
pub const PFERR_WRITE_MASK: u64 = 1 << 1;
pub const PFERR_USER_MASK: u64 = 1 << 2;
pub const PFERR_RSVD_MASK: u64 = 1 << 3;
pub const PFERR_FETCH_MASK: u64 = 1 << 4;

// ---- arch/x86/kvm/mmu/spte.h ----
pub const SPTE_MMU_PRESENT_MASK: u64 = 1 << 11;
#[cfg(not(kvm_rs_6_12))]
pub const SPTE_TDP_AD_SHIFT: u32 = 60;
#[cfg(kvm_rs_6_12)]
pub const SPTE_TDP_AD_SHIFT: u32 = 52;
pub const SPTE_TDP_AD_MASK: u64 = 3 << SPTE_TDP_AD_SHIFT;
pub const SPTE_TDP_AD_ENABLED: u64 = 0 << SPTE_TDP_AD_SHIFT;
pub const SPTE_TDP_AD_DISABLED: u64 = 1 << SPTE_TDP_AD_SHIFT;
pub const SPTE_TDP_AD_WRPROT_ONLY: u64 = 2 << SPTE_TDP_AD_SHIFT;
pub const SPTE_BASE_ADDR_MASK: u64 = ((1u64 << 52) - 1) & !(4096u64 - 1);
pub const SPTE_LEVEL_BITS: u32 = 9;
pub const SPTE_ENT_PER_PAGE: u64 = 1 << SPTE_LEVEL_BITS;
#[cfg(not(kvm_rs_6_12))]
pub const SHADOW_ACC_TRACK_SAVED_BITS_MASK: u64 =
    VMX_EPT_READABLE_MASK | VMX_EPT_EXECUTABLE_MASK | VMX_EPT_USER_EXECUTABLE_MASK;
#[cfg(kvm_rs_6_12)]
pub const SHADOW_ACC_TRACK_SAVED_BITS_MASK: u64 = VMX_EPT_READABLE_MASK | VMX_EPT_EXECUTABLE_MASK;
#[cfg(not(kvm_rs_6_12))]
pub const SHADOW_ACC_TRACK_SAVED_BITS_SHIFT: u32 = 52;
#[cfg(kvm_rs_6_12)]
pub const SHADOW_ACC_TRACK_SAVED_BITS_SHIFT: u32 = 54;
pub const DEFAULT_SPTE_HOST_WRITABLE: u64 = 1 << 9;
pub const DEFAULT_SPTE_MMU_WRITABLE: u64 = 1 << 10;
#[cfg(not(kvm_rs_6_12))]
pub const EPT_SPTE_HOST_WRITABLE: u64 = 1 << 53;
#[cfg(not(kvm_rs_6_12))]
pub const EPT_SPTE_MMU_WRITABLE: u64 = 1 << 55;
#[cfg(kvm_rs_6_12)]
pub const EPT_SPTE_HOST_WRITABLE: u64 = 1 << 57;
#[cfg(kvm_rs_6_12)]
pub const EPT_SPTE_MMU_WRITABLE: u64 = 1 << 58;
pub const SHADOW_NONPRESENT_VALUE: u64 = 1 << 63;
#[cfg(not(kvm_rs_6_12))]
pub const FROZEN_SPTE: u64 = SHADOW_NONPRESENT_VALUE | 0x1a0;
#[cfg(kvm_rs_6_12)]
pub const FROZEN_SPTE: u64 = SHADOW_NONPRESENT_VALUE | 0x5a0;
pub const PAGE_SHIFT: u32 = 12;

/// `__PT_LEVEL_SHIFT(level, SPTE_LEVEL_BITS)`.
pub fn spte_level_shift(level: i32) -> u32 {
    PAGE_SHIFT + (level as u32 - 1) * SPTE_LEVEL_BITS
}

/// `SPTE_INDEX(address, level)` = `__PT_INDEX()`.
pub fn spte_index_of_address(address: u64, level: i32) -> u64 {
    (address >> spte_level_shift(level)) & (SPTE_ENT_PER_PAGE - 1)
}

/// `KVM_PAGES_PER_HPAGE(level)`.
pub fn kvm_pages_per_hpage(level: i32) -> u64 {
    1u64 << ((level as u32 - 1) * 9)
}

/// `gfn_round_for_level()`.
pub fn gfn_round_for_level(gfn: u64, level: i32) -> u64 {
    gfn & kvm_pages_per_hpage(level).wrapping_neg()
}

pub fn is_shadow_present_pte(pte: u64) -> bool {
    pte & SPTE_MMU_PRESENT_MASK != 0
}
pub fn is_large_pte(pte: u64) -> bool {
    pte & PT_PAGE_SIZE_MASK != 0
}
pub fn is_last_spte(pte: u64, level: i32) -> bool {
    level == PG_LEVEL_4K || is_large_pte(pte)
}
pub fn is_writable_pte(pte: u64) -> bool {
    pte & PT_WRITABLE_MASK != 0
}
pub fn is_frozen_spte(spte: u64) -> bool {
    spte == FROZEN_SPTE
}
pub fn spte_ad_enabled(spte: u64) -> bool {
    (spte & SPTE_TDP_AD_MASK) != SPTE_TDP_AD_DISABLED
}
pub fn spte_to_pfn(pte: u64) -> u64 {
    (pte & SPTE_BASE_ADDR_MASK) >> PAGE_SHIFT
}

/// `ACC_BITS_MASK(access)` of mmu.c.
pub const fn acc_bits_mask(access: u32) -> u16 {
    let mut m = 0u16;
    let mut i = 1;
    while i < 16 {
        if i & access != 0 {
            m |= 1 << i;
        }
        i += 1;
    }
    m
}

/// `__update_permission_bitmask()` of mmu.c, verbatim.
pub fn update_permission_bitmask(
    tdp: bool,
    ept: bool,
    cr4_smep: bool,
    cr4_smap: bool,
    cr0_wp: bool,
    efer_nx: bool,
) -> [u16; 16] {
    let mut permissions = [0u16; 16];
    let w = acc_bits_mask(ACC_WRITE_MASK);
    let r = acc_bits_mask(ACC_READ_MASK);
    for index in 0..16u64 {
        let pfec = index << 1;
        let rf: u16 = if pfec & (PFERR_WRITE_MASK | PFERR_FETCH_MASK) != 0 {
            0
        } else {
            !r
        };
        let mut wf: u16 = if pfec & PFERR_WRITE_MASK != 0 { !w } else { 0 };
        let mut uf: u16 = 0;
        let mut ff: u16 = 0;
        let mut smapf: u16 = 0;
        if ept {
            let xs = acc_bits_mask(ACC_EXEC_MASK);
            let xu = acc_bits_mask(ACC_USER_EXEC_MASK);
            if pfec & PFERR_FETCH_MASK != 0 {
                if cr4_smep {
                    ff = if pfec & PFERR_USER_MASK != 0 {
                        !xu
                    } else {
                        !xs
                    };
                } else {
                    ff = !xs;
                }
            }
        } else {
            let x = acc_bits_mask(ACC_EXEC_MASK);
            let u = acc_bits_mask(ACC_USER_MASK);
            let kf: u16 = if pfec & PFERR_USER_MASK != 0 { 0 } else { u };
            if !(tdp && cr4_smep) {
                uf = if pfec & PFERR_USER_MASK != 0 { !u } else { 0 };
            }
            if efer_nx {
                ff |= if pfec & PFERR_FETCH_MASK != 0 { !x } else { 0 };
            }
            if !cr0_wp {
                wf = if pfec & PFERR_USER_MASK != 0 { wf } else { 0 };
            }
            if cr4_smep {
                ff |= if pfec & PFERR_FETCH_MASK != 0 { kf } else { 0 };
            }
            if cr4_smap {
                smapf = if pfec & (PFERR_RSVD_MASK | PFERR_FETCH_MASK) != 0 {
                    0
                } else {
                    kf
                };
            }
        }
        permissions[index as usize] = ff | uf | wf | rf | smapf;
    }
    permissions
}

/// The `shadow_*` globals and `mmu->fmt.permissions` of a TDP MMU.
#[derive(Clone, Debug)]
pub struct RefMmu {
    pub kvm_ad_enabled: bool,
    pub shadow_user_mask: u64,
    pub shadow_accessed_mask: u64,
    pub shadow_dirty_mask: u64,
    pub shadow_nx_mask: u64,
    /// 6.12: `shadow_x_mask` (no MBEC there).
    pub shadow_xs_mask: u64,
    /// 6.12: none, 0.
    pub shadow_xu_mask: u64,
    pub shadow_present_mask: u64,
    pub shadow_acc_track_mask: u64,
    pub shadow_host_writable_mask: u64,
    pub shadow_mmu_writable_mask: u64,
    pub permissions: [u16; 16],
}

impl RefMmu {
    /// `kvm_mmu_reset_all_pte_masks()` then `kvm_mmu_set_ept_masks()`, then
    /// `init_kvm_tdp_mmu()`: `update_spte_permission_bitmask(context, true,
    /// shadow_xs_mask)` with `root_role.cr4_smep` = `tdp_has_smep`.
    #[cfg(not(kvm_rs_6_12))]
    pub fn ept(has_ad_bits: bool, tdp_has_smep: bool) -> Self {
        let mut m = RefMmu {
            kvm_ad_enabled: has_ad_bits,
            shadow_user_mask: 0,
            shadow_accessed_mask: VMX_EPT_ACCESS_BIT,
            shadow_dirty_mask: VMX_EPT_DIRTY_BIT,
            shadow_nx_mask: 0,
            shadow_xs_mask: VMX_EPT_EXECUTABLE_MASK,
            shadow_xu_mask: VMX_EPT_USER_EXECUTABLE_MASK,
            shadow_present_mask: VMX_EPT_SUPPRESS_VE_BIT,
            shadow_acc_track_mask: VMX_EPT_RWX_MASK | VMX_EPT_USER_EXECUTABLE_MASK,
            shadow_host_writable_mask: EPT_SPTE_HOST_WRITABLE,
            shadow_mmu_writable_mask: EPT_SPTE_MMU_WRITABLE,
            permissions: [0; 16],
        };
        m.update_spte_permission_bitmask(true, m.shadow_xs_mask != 0, tdp_has_smep);
        m
    }

    /// 6.12: `kvm_mmu_reset_all_pte_masks()` then
    /// `kvm_mmu_set_ept_masks(has_ad_bits, true)`: the accessed and dirty
    /// masks are 0 without A/D bits, `kvm_ad_enabled()` is
    /// `!!shadow_accessed_mask`, the user mask is the readable bit and the
    /// access-tracking mask RWX. No permission table is used.
    #[cfg(kvm_rs_6_12)]
    pub fn ept(has_ad_bits: bool, tdp_has_smep: bool) -> Self {
        let _ = tdp_has_smep;
        let accessed = if has_ad_bits { VMX_EPT_ACCESS_BIT } else { 0 };
        RefMmu {
            kvm_ad_enabled: accessed != 0,
            shadow_user_mask: VMX_EPT_READABLE_MASK,
            shadow_accessed_mask: accessed,
            shadow_dirty_mask: if has_ad_bits { VMX_EPT_DIRTY_BIT } else { 0 },
            shadow_nx_mask: 0,
            shadow_xs_mask: VMX_EPT_EXECUTABLE_MASK,
            shadow_xu_mask: 0,
            shadow_present_mask: VMX_EPT_SUPPRESS_VE_BIT,
            shadow_acc_track_mask: VMX_EPT_RWX_MASK,
            shadow_host_writable_mask: EPT_SPTE_HOST_WRITABLE,
            shadow_mmu_writable_mask: EPT_SPTE_MMU_WRITABLE,
            permissions: [0; 16],
        }
    }

    /// `kvm_mmu_reset_all_pte_masks()` (SVM does not override), then
    /// `init_kvm_tdp_mmu()`.
    pub fn npt(tdp_has_smep: bool) -> Self {
        let mut m = RefMmu {
            kvm_ad_enabled: true,
            shadow_user_mask: PT_USER_MASK,
            shadow_accessed_mask: PT_ACCESSED_MASK,
            shadow_dirty_mask: PT_DIRTY_MASK,
            shadow_nx_mask: PT64_NX_MASK,
            shadow_xs_mask: 0,
            shadow_xu_mask: 0,
            shadow_present_mask: PT_PRESENT_MASK,
            shadow_acc_track_mask: 0,
            shadow_host_writable_mask: DEFAULT_SPTE_HOST_WRITABLE,
            shadow_mmu_writable_mask: DEFAULT_SPTE_MMU_WRITABLE,
            permissions: [0; 16],
        };
        m.update_spte_permission_bitmask(true, m.shadow_xs_mask != 0, tdp_has_smep);
        m
    }

    /// `update_spte_permission_bitmask()`: smap false, cr0_wp true, efer_nx true.
    fn update_spte_permission_bitmask(&mut self, tdp: bool, ept: bool, cr4_smep: bool) {
        self.permissions = update_permission_bitmask(tdp, ept, cr4_smep, false, true, true);
    }

    /// The row the C glue hands to Rust: `permissions[pfec >> 1]`.
    pub fn permission_row(&self, error_code: u64) -> u16 {
        let pfec = error_code & (PFERR_WRITE_MASK | PFERR_USER_MASK | PFERR_FETCH_MASK);
        self.permissions[(pfec >> 1) as usize]
    }

    pub fn is_mmu_writable_spte(&self, spte: u64) -> bool {
        spte & self.shadow_mmu_writable_mask != 0
    }

    pub fn is_access_track_spte(&self, spte: u64) -> bool {
        !spte_ad_enabled(spte) && (spte & self.shadow_acc_track_mask) == 0
    }

    pub fn restore_acc_track_spte(&self, mut spte: u64) -> u64 {
        let saved_bits =
            (spte >> SHADOW_ACC_TRACK_SAVED_BITS_SHIFT) & SHADOW_ACC_TRACK_SAVED_BITS_MASK;
        spte &= !self.shadow_acc_track_mask;
        spte &= !(SHADOW_ACC_TRACK_SAVED_BITS_MASK << SHADOW_ACC_TRACK_SAVED_BITS_SHIFT);
        spte |= saved_bits;
        spte
    }

    /// The `pte_access` computed inside `spte_permission_fault()`.
    pub fn pte_access(&self, spte: u64) -> u32 {
        let mut pte_access = (spte & (PT_PRESENT_MASK | PT_WRITABLE_MASK)) as u32;
        if self.shadow_nx_mask != 0 {
            pte_access |= if spte & self.shadow_user_mask != 0 {
                ACC_USER_MASK
            } else {
                0
            };
            pte_access |= if spte & self.shadow_nx_mask != 0 {
                0
            } else {
                ACC_EXEC_MASK
            };
        } else {
            pte_access |= if spte & self.shadow_xs_mask != 0 {
                ACC_EXEC_MASK
            } else {
                0
            };
            pte_access |= if spte & self.shadow_xu_mask != 0 {
                ACC_USER_EXEC_MASK
            } else {
                0
            };
        }
        pte_access
    }

    /// `spte_permission_fault(mmu, spte, fault)`.
    pub fn spte_permission_fault(&self, spte: u64, error_code: u64) -> bool {
        if !is_shadow_present_pte(spte) {
            return true;
        }
        let pte_access = self.pte_access(spte);
        let pfec = error_code & (PFERR_WRITE_MASK | PFERR_USER_MASK | PFERR_FETCH_MASK);
        (self.permissions[(pfec >> 1) as usize] >> pte_access) & 1 != 0
    }

    /// `(__va(spte_to_pfn(spte) << PAGE_SHIFT))` of `spte_to_child_pt()`, as
    /// a physical address (host tests: identity).
    pub fn spte_to_child_pt(&self, spte: u64, level: i32) -> Option<u64> {
        if !is_shadow_present_pte(spte) || is_last_spte(spte, level) {
            return None;
        }
        Some(spte_to_pfn(spte) << PAGE_SHIFT)
    }

    /// One iteration of the `do { } while (true)` loop of
    /// `fast_page_fault()` after the walk, for snapshot `spte` of the SPTE in
    /// a page table of `level` (`sp->role.level`).
    pub fn fast_page_fault_body(
        &self,
        spte: u64,
        level: i32,
        error_code: u64,
        slot_dirty_tracked: bool,
    ) -> RefStep {
        let write = error_code & PFERR_WRITE_MASK != 0;
        if !is_shadow_present_pte(spte) {
            return RefStep::Break(RetPf::Invalid);
        }
        if !is_last_spte(spte, level) {
            return RefStep::Break(RetPf::Invalid);
        }
        if !self.still_faults(spte, error_code) {
            return RefStep::Break(RetPf::Spurious);
        }
        let mut new_spte = spte;
        #[cfg(not(kvm_rs_6_12))]
        if !self.kvm_ad_enabled && self.is_access_track_spte(spte) {
            new_spte = self.restore_acc_track_spte(new_spte) | self.shadow_accessed_mask;
        }
        // 6.12's restore_acc_track_spte() does not set the accessed bit.
        #[cfg(kvm_rs_6_12)]
        if !self.kvm_ad_enabled && self.is_access_track_spte(spte) {
            new_spte = self.restore_acc_track_spte(new_spte);
        }
        if write && self.is_mmu_writable_spte(spte) {
            new_spte |= PT_WRITABLE_MASK;
            if level > PG_LEVEL_4K && slot_dirty_tracked {
                return RefStep::Break(RetPf::Invalid);
            }
        }
        if new_spte == spte || self.still_faults(new_spte, error_code) {
            return RefStep::Break(RetPf::Invalid);
        }
        RefStep::Fix(new_spte)
    }

    /// 7.3's check in `fast_page_fault()`: `spte_permission_fault()`.
    #[cfg(not(kvm_rs_6_12))]
    pub fn still_faults(&self, spte: u64, error_code: u64) -> bool {
        self.spte_permission_fault(spte, error_code)
    }

    /// 6.12's check in `fast_page_fault()`: `!is_access_allowed(fault, spte)`.
    #[cfg(kvm_rs_6_12)]
    pub fn still_faults(&self, spte: u64, error_code: u64) -> bool {
        !self.is_access_allowed(error_code, spte)
    }

    /// 6.12's `is_executable_pte()`.
    pub fn is_executable_pte(&self, spte: u64) -> bool {
        (spte & (self.shadow_xs_mask | self.shadow_nx_mask)) == self.shadow_xs_mask
    }

    /// 6.12's `is_access_allowed()`, with `fault->exec` and `fault->write`
    /// from the error code as `kvm_mmu_do_page_fault()` sets them.
    pub fn is_access_allowed(&self, error_code: u64, spte: u64) -> bool {
        if error_code & PFERR_FETCH_MASK != 0 {
            return self.is_executable_pte(spte);
        }
        if error_code & PFERR_WRITE_MASK != 0 {
            return is_writable_pte(spte);
        }
        spte & PT_PRESENT_MASK != 0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetPf {
    Invalid,
    Fixed,
    Spurious,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefStep {
    Break(RetPf),
    Fix(u64),
}

/// `struct tdp_iter` and `tdp_iter.c`, over a memory given as closures:
/// `read(sptep)` is `kvm_tdp_mmu_read_spte()`, `va(pa)` is `__va()`.
pub struct TdpIter<'a> {
    pub next_last_level_gfn: u64,
    pub pt_path: [u64; 5],
    pub sptep: u64,
    pub gfn: u64,
    pub gfn_bits: u64,
    pub root_level: i32,
    pub min_level: i32,
    pub level: i32,
    pub old_spte: u64,
    pub valid: bool,
    pub read: &'a mut dyn FnMut(u64) -> u64,
    pub mmu: &'a RefMmu,
}

impl TdpIter<'_> {
    fn refresh_sptep(&mut self) {
        self.sptep = self.pt_path[(self.level - 1) as usize]
            + 8 * spte_index_of_address((self.gfn | self.gfn_bits) << PAGE_SHIFT, self.level);
        self.old_spte = (self.read)(self.sptep);
    }

    fn restart(&mut self) {
        self.level = self.root_level;
        self.gfn = gfn_round_for_level(self.next_last_level_gfn, self.level);
        self.refresh_sptep();
        self.valid = true;
    }

    fn try_step_down(&mut self) -> bool {
        if self.level == self.min_level {
            return false;
        }
        self.old_spte = (self.read)(self.sptep);
        let child_pt = match self.mmu.spte_to_child_pt(self.old_spte, self.level) {
            Some(pa) => pa,
            None => return false,
        };
        self.level -= 1;
        self.pt_path[(self.level - 1) as usize] = child_pt;
        self.gfn = gfn_round_for_level(self.next_last_level_gfn, self.level);
        self.refresh_sptep();
        true
    }

    fn try_step_side(&mut self) -> bool {
        if spte_index_of_address((self.gfn | self.gfn_bits) << PAGE_SHIFT, self.level)
            == SPTE_ENT_PER_PAGE - 1
        {
            return false;
        }
        self.gfn = self.gfn.wrapping_add(kvm_pages_per_hpage(self.level));
        self.next_last_level_gfn = self.gfn;
        self.sptep += 8;
        self.old_spte = (self.read)(self.sptep);
        true
    }

    fn try_step_up(&mut self) -> bool {
        if self.level == self.root_level {
            return false;
        }
        self.level += 1;
        self.gfn = gfn_round_for_level(self.gfn, self.level);
        self.refresh_sptep();
        true
    }

    fn next(&mut self) {
        if self.try_step_down() {
            return;
        }
        loop {
            if self.try_step_side() {
                return;
            }
            if !self.try_step_up() {
                break;
            }
        }
        self.valid = false;
    }
}

/// One loop-body execution of `for_each_tdp_pte(iter, kvm, root, gfn, gfn + 1)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Visit {
    pub level: i32,
    pub sptep: u64,
    pub old_spte: u64,
}

/// `tdp_iter_start()` + `for_each_tdp_pte(iter, kvm, root, gfn, gfn + 1)`,
/// recording the body's `(iter.level, iter.sptep, iter.old_spte)`. Returns
/// `None` when `tdp_iter_start()` WARNs (invalid iterator). `root_spt` is
/// the root's address (`None` = NULL root).
pub fn for_each_tdp_pte(
    mmu: &RefMmu,
    read: &mut dyn FnMut(u64) -> u64,
    root_spt: Option<u64>,
    root_level: i32,
    gfn: u64,
    gfn_bits: u64,
) -> Option<Vec<Visit>> {
    let end = gfn.wrapping_add(1);
    if root_spt.is_none()
        || root_level < 1
        || root_level > PT64_ROOT_MAX_LEVEL
        || (gfn_bits != 0 && gfn >= gfn_bits)
    {
        return None;
    }
    let mut iter = TdpIter {
        next_last_level_gfn: gfn,
        pt_path: [0; 5],
        sptep: 0,
        gfn: 0,
        gfn_bits,
        root_level,
        min_level: PG_LEVEL_4K,
        level: 0,
        old_spte: 0,
        valid: false,
        read,
        mmu,
    };
    iter.pt_path[(root_level - 1) as usize] = root_spt.unwrap();
    iter.restart();
    let mut visits = Vec::new();
    while iter.valid && iter.gfn < end {
        visits.push(Visit {
            level: iter.level,
            sptep: iter.sptep,
            old_spte: iter.old_spte,
        });
        iter.next();
    }
    Some(visits)
}
