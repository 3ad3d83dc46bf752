//! Page tables in host memory for tests, and a [`Section`] over them.

use crate::spte::{
    self, Masks, PT_PAGE_SIZE_MASK, PT_PRESENT_MASK, PT_WRITABLE_MASK, SPTE_MMU_PRESENT_MASK,
};
use crate::tdp_mmu::{Root, Section};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};

/// One 4 KiB page table of 512 SPTEs.
#[repr(C, align(4096))]
pub struct Table(pub [AtomicU64; 512]);

impl Table {
    fn new() -> Box<Self> {
        Box::new(Table(core::array::from_fn(|_| AtomicU64::new(0))))
    }
}

/// `SPTE_BASE_ADDR_MASK` without `CONFIG_DYNAMIC_PHYSICAL_MASK`: bits 51:12.
/// Host virtual addresses of [`Table`]s fit in it, so they serve as
/// "physical" addresses.
pub const BASE_ADDR_MASK: u64 = ((1u64 << 52) - 1) & !0xfff;

/// NPT masks as `kvm_mmu_reset_all_pte_masks()` sets them (AMD, and the
/// defaults): NX bit 63, user bit 2, MMU-writable bit 10
/// (`DEFAULT_SPTE_MMU_WRITABLE`), accessed bit 5, no access tracking, A/D
/// bits on; physical addresses are host virtual addresses.
pub fn npt_masks() -> Masks {
    Masks {
        nx: 1 << 63,
        user: 1 << 2,
        xs: 0,
        xu: 0,
        mmu_writable: 1 << 10,
        acc_track: 0,
        accessed: 1 << 5,
        base_addr: BASE_ADDR_MASK,
        ad_enabled: true,
    }
}

/// EPT masks as `kvm_mmu_set_ept_masks(has_ad_bits)` sets them: XS bit 2,
/// XU bit 10, MMU-writable bit 55, accessed bit 8, access tracking clears
/// RWX and XU.
pub fn ept_masks(has_ad_bits: bool) -> Masks {
    Masks {
        nx: 0,
        user: 0,
        xs: 1 << 2,
        xu: 1 << 10,
        mmu_writable: 1 << 55,
        acc_track: 0x7 | (1 << 10),
        accessed: 1 << 8,
        base_addr: BASE_ADDR_MASK,
        ad_enabled: has_ad_bits,
    }
}

/// A tree of page tables in host memory. Tables are never freed while the
/// `Tables` lives, which is what makes [`Tables::section`] a valid section.
pub struct Tables {
    tables: Vec<Box<Table>>,
    level: u32,
}

/// A [`Section`] over [`Tables`]: borrowing the tables keeps them alive.
pub struct HostSection<'t> {
    _tables: &'t Tables,
}

// SAFETY: the tables a `HostSection` borrows are not freed while it lives
// (`Tables` frees them only on drop, which the borrow prevents), and the
// accesses are `AtomicU64` operations.
unsafe impl Section for HostSection<'_> {
    #[inline(always)]
    unsafe fn load(&self, sptep: NonNull<u64>) -> u64 {
        // SAFETY: the caller's pointer is into a live `Table` of atomics.
        unsafe { AtomicU64::from_ptr(sptep.as_ptr()) }.load(Ordering::Relaxed)
    }

    #[inline(always)]
    unsafe fn cmpxchg(&self, sptep: NonNull<u64>, old: u64, new: u64) -> Result<(), u64> {
        // SAFETY: as in `load()`.
        unsafe { AtomicU64::from_ptr(sptep.as_ptr()) }
            .compare_exchange(old, new, Ordering::SeqCst, Ordering::SeqCst)
            .map(|_| ())
    }

    #[inline(always)]
    fn table(&self, pa: u64) -> Option<NonNull<u64>> {
        NonNull::new(pa as *mut u64)
    }
}

impl Tables {
    /// An empty tree with a root of `level` (4 or 5).
    pub fn new(level: u32) -> Self {
        Tables {
            tables: vec![Table::new()],
            level,
        }
    }

    /// The root, as the walk takes it.
    pub fn root(&self) -> Root {
        Root {
            spt: NonNull::new(self.tables[0].0.as_ptr() as *mut u64),
            level: self.level,
            gfn_bits: 0,
        }
    }

    /// Enter a read section over these tables.
    pub fn section(&self) -> HostSection<'_> {
        HostSection { _tables: self }
    }

    fn table_ptr(t: &Table) -> u64 {
        t.0.as_ptr() as u64
    }

    /// The SPTE slot for `gfn` at `level`, creating the tables above it.
    pub fn slot(&mut self, gfn: u64, level: u32) -> &AtomicU64 {
        let mut idx = 0usize;
        let mut l = self.level;
        while l > level {
            let i = spte::spte_index(gfn, l);
            let v = self.tables[idx].0[i].load(Ordering::Relaxed);
            let next = if spte::is_shadow_present(v) && !spte::is_large(v) {
                let pa = v & BASE_ADDR_MASK;
                self.tables
                    .iter()
                    .position(|t| Self::table_ptr(t) == pa)
                    .expect("child table")
            } else {
                let t = Table::new();
                let pa = Self::table_ptr(&t);
                self.tables.push(t);
                let non_leaf =
                    pa | SPTE_MMU_PRESENT_MASK | PT_PRESENT_MASK | PT_WRITABLE_MASK | (1 << 2);
                self.tables[idx].0[i].store(non_leaf, Ordering::Relaxed);
                self.tables.len() - 1
            };
            idx = next;
            l -= 1;
        }
        &self.tables[idx].0[spte::spte_index(gfn, level)]
    }

    /// A root of these tables with `kvm_gfn_root_bits()` = `gfn_bits`.
    pub fn root_with_gfn_bits(&self, gfn_bits: u64) -> Root {
        Root {
            gfn_bits,
            ..self.root()
        }
    }

    /// The level of the root.
    pub fn level(&self) -> u32 {
        self.level
    }

    /// Store `spte` as is in the slot for `gfn` at `level` (creating the
    /// tables above it), e.g. a non-present or frozen value.
    pub fn set_raw(&mut self, gfn: u64, level: u32, spte: u64) {
        self.slot(gfn, level).store(spte, Ordering::Relaxed);
    }

    /// The address of the slot for `gfn` at `level` (creating the tables
    /// above it).
    pub fn slot_ptr(&mut self, gfn: u64, level: u32) -> *mut u64 {
        self.slot(gfn, level).as_ptr()
    }

    /// Map `gfn` with a leaf SPTE at `level` holding `spte` (PT_PAGE_SIZE is
    /// added above 4K).
    pub fn map(&mut self, gfn: u64, level: u32, spte: u64) {
        let v = if level > 1 {
            spte | PT_PAGE_SIZE_MASK
        } else {
            spte
        };
        self.slot(gfn, level).store(v, Ordering::Relaxed);
    }
}
