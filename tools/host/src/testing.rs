//! Page tables in host memory for tests, and a [`Section`] over them.

use crate::fast_pf::Fault;
use crate::spte::{
    self, MaskValues, Masks, PT_PAGE_SIZE_MASK, PT_PRESENT_MASK, PT_WRITABLE_MASK,
    SPTE_MMU_PRESENT_MASK,
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
    host_masks(MaskValues {
        nx: 1 << 63,
        user: 1 << 2,
        xs: 0,
        xu: 0,
        mmu_writable: 1 << 10,
        acc_track: 0,
        accessed: 1 << 5,
        base_addr: BASE_ADDR_MASK,
        ad_enabled: true,
    })
}

/// EPT masks as `kvm_mmu_set_ept_masks(has_ad_bits)` sets them: XS bit 2,
/// XU bit 10, MMU-writable bit 55, accessed bit 8, access tracking clears
/// RWX and XU.
#[cfg(not(kvm_rs_6_12))]
pub fn ept_masks(has_ad_bits: bool) -> Masks {
    host_masks(MaskValues {
        nx: 0,
        user: 0,
        xs: 1 << 2,
        xu: 1 << 10,
        mmu_writable: 1 << 55,
        acc_track: 0x7 | (1 << 10),
        accessed: 1 << 8,
        base_addr: BASE_ADDR_MASK,
        ad_enabled: has_ad_bits,
    })
}

/// EPT masks as 6.12's `kvm_mmu_set_ept_masks(has_ad_bits, true)` sets
/// them: user mask the readable bit, X bit 2 (`shadow_x_mask`, in `xs`),
/// MMU-writable bit 58, accessed bit 8 only with A/D bits (and
/// `kvm_ad_enabled()` = `!!shadow_accessed_mask`), access tracking clears
/// RWX.
#[cfg(kvm_rs_6_12)]
pub fn ept_masks(has_ad_bits: bool) -> Masks {
    host_masks(MaskValues {
        nx: 0,
        user: 1,
        xs: 1 << 2,
        xu: 0,
        mmu_writable: 1 << 58,
        acc_track: 0x7,
        accessed: if has_ad_bits { 1 << 8 } else { 0 },
        base_addr: BASE_ADDR_MASK,
        ad_enabled: has_ad_bits,
    })
}

/// A write fault (error code W, not user, not fetch) on `gfn`, as the C
/// glue describes it: on 7.3 the permission row `permissions[PFERR_WRITE_MASK
/// >> 1]`, which faults exactly on the accesses without write permission
/// (whatever the MMU, since `cr0.wp` is 1 for TDP), on 6.12 `exec` false.
pub fn write_fault(gfn: u64, slot_dirty_tracked: bool) -> Fault {
    Fault {
        gfn,
        write: true,
        #[cfg(not(kvm_rs_6_12))]
        permissions: (0..16u16).filter(|a| a & 2 == 0).fold(0, |r, a| r | 1 << a),
        #[cfg(kvm_rs_6_12)]
        exec: false,
        slot_dirty_tracked,
    }
}

/// `values` as the [`Masks`] of walks over [`Tables`], whose physical
/// addresses are host virtual addresses inside [`BASE_ADDR_MASK`].
///
/// # Panics
///
/// If `values.base_addr` is not [`BASE_ADDR_MASK`], or `accessed` or
/// `acc_track` has a bit of `PT_PAGE_SIZE_MASK`, `SPTE_MMU_PRESENT_MASK`,
/// the address or the saved access-tracking bits (no KVM value does).
pub fn host_masks(values: MaskValues) -> Masks {
    assert_eq!(
        values.base_addr, BASE_ADDR_MASK,
        "host tables need BASE_ADDR_MASK"
    );
    let kept = PT_PAGE_SIZE_MASK
        | SPTE_MMU_PRESENT_MASK
        | BASE_ADDR_MASK
        | (spte::SHADOW_ACC_TRACK_SAVED_BITS_MASK << spte::SHADOW_ACC_TRACK_SAVED_BITS_SHIFT);
    assert_eq!(
        (values.accessed | values.acc_track) & kept,
        0,
        "accessed/acc_track masks overlap the leaf, present, address or saved bits"
    );
    // SAFETY: `Masks::new()` requires the masks the walked SPTEs were made
    // with. Of those, `base_addr` decides which address a walk follows, and
    // the SPTEs that point to a table of a `Tables` hold its address inside
    // `BASE_ADDR_MASK` (asserted); `accessed` and `acc_track` decide which
    // bits a fix may change, and share none with the leaf, present and
    // address bits (asserted), so a fix keeps a leaf a leaf at its address.
    // The other masks decide about leaves, which in host memory map
    // nothing: a wrong one changes a test's verdict, not which memory is
    // accessed.
    unsafe { Masks::new(values) }
}

/// A tree of page tables in host memory. Tables are never freed while the
/// `Tables` lives, which is what makes [`Tables::section`] a valid section.
///
/// # Invariants
///
/// - Every shadow-present non-leaf SPTE in `tables` (at a level above 1,
///   without `PT_PAGE_SIZE_MASK`) was written by [`Tables::slot`] and holds
///   the address of another element of `tables`: [`Tables::set_raw`] and
///   [`Tables::map`] write only leaves and non-present values above
///   level 1, and nothing else hands out write access to an SPTE.
/// - A table is freed only when the `Tables` is dropped.
pub struct Tables {
    tables: Vec<Box<Table>>,
    level: u32,
}

/// A [`Section`] over [`Tables`]: borrowing the tables keeps them alive.
pub struct HostSection<'t> {
    _tables: &'t Tables,
}

// SAFETY: the contract of `Section`:
// - The roots valid here are those of `Tables::root()`, a `Root<'t>` that
//   borrows its `Tables` (possibly another one than this section's): the
//   root table is allocated for as long as the `Root` is.
// - A shadow-present non-leaf SPTE of a `Tables` holds the address of a
//   table of the same `Tables` (its invariant), which is freed only when
//   that `Tables` is dropped, which the `Root`'s borrow prevents for as
//   long as the `Root` lives, and a walk's `Root` outlives its section
//   borrow (`&Root<'s>`). So `table()`, which is `__va()` with the identity
//   map, returns a table that stays allocated for the borrow.
// - The accesses are `AtomicU64` operations: single-copy atomic, `Relaxed`
//   for `READ_ONCE()`, `SeqCst` for the fully ordered `try_cmpxchg64()`;
//   every other access to a `Table` is atomic too (its elements are
//   `AtomicU64`).
unsafe impl Section for HostSection<'_> {
    #[inline(always)]
    unsafe fn load(&self, sptep: *mut u64) -> u64 {
        // SAFETY: `AtomicU64::from_ptr()` requires an aligned pointer valid
        // for the call to memory only accessed atomically: the caller passes
        // an SPTE address of a live `Table` (see the impl's contract above),
        // an element of an array of `AtomicU64`.
        unsafe { AtomicU64::from_ptr(sptep) }.load(Ordering::Relaxed)
    }

    #[inline(always)]
    unsafe fn cmpxchg(&self, sptep: *mut u64, old: u64, new: u64) -> Result<(), u64> {
        // SAFETY: as in `load()`.
        unsafe { AtomicU64::from_ptr(sptep) }
            .compare_exchange(old, new, Ordering::SeqCst, Ordering::SeqCst)
            .map(|_| ())
    }

    #[inline(always)]
    unsafe fn table(&self, pa: u64) -> Option<NonNull<u64>> {
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

    /// The root, as the walk takes it. It borrows the tables.
    pub fn root(&self) -> Root<'_> {
        self.root_with_gfn_bits(0)
    }

    /// Enter a read section over these tables.
    pub fn section(&self) -> HostSection<'_> {
        HostSection { _tables: self }
    }

    fn table_ptr(t: &Table) -> u64 {
        t.0.as_ptr() as u64
    }

    /// The SPTE slot for `gfn` at `level`, creating the tables above it.
    ///
    /// Private: the caller must store only a leaf or a non-present value
    /// above level 1 (the type invariant).
    fn slot(&mut self, gfn: u64, level: u32) -> &AtomicU64 {
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
                // INVARIANT: a non-leaf SPTE to a table of `self.tables`.
                self.tables[idx].0[i].store(non_leaf, Ordering::Relaxed);
                self.tables.len() - 1
            };
            idx = next;
            l -= 1;
        }
        &self.tables[idx].0[spte::spte_index(gfn, level)]
    }

    /// A root of these tables with `kvm_gfn_root_bits()` = `gfn_bits`. It
    /// borrows the tables.
    pub fn root_with_gfn_bits(&self, gfn_bits: u64) -> Root<'_> {
        let spt = self.tables[0].0.as_ptr() as *mut u64;
        // SAFETY: `Root::new()` requires, for the non-null `spt`:
        // - a root table allocated for `'_`: `tables[0]` is freed only when
        //   `self` is dropped, which the returned borrow of `self` prevents;
        // - SPTEs accessed only atomically and lower tables freed only as
        //   `HostSection` allows: they are `AtomicU64`s, and lower tables
        //   are freed with `self` (type invariants);
        // - `level` its level: a walk reads a level-N table as level N, and
        //   a test's own `gfn_bits` only changes which entries are read.
        unsafe { Root::new(spt, self.level, gfn_bits) }
    }

    /// The level of the root.
    pub fn level(&self) -> u32 {
        self.level
    }

    /// Store `spte` as is in the slot for `gfn` at `level` (creating the
    /// tables above it), e.g. a non-present or frozen value.
    ///
    /// # Panics
    ///
    /// If `spte` would be a shadow-present non-leaf SPTE (a table pointer)
    /// above level 1: only [`Tables`] itself links tables.
    pub fn set_raw(&mut self, gfn: u64, level: u32, spte: u64) {
        assert!(
            level <= 1 || !spte::is_shadow_present(spte) || spte::is_large(spte),
            "set_raw({gfn:#x}, {level}, {spte:#x}): a table pointer"
        );
        // INVARIANT: a leaf, or not shadow-present, or at level 1 (checked).
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
        // INVARIANT: a leaf (PT_PAGE_SIZE_MASK above level 1).
        self.slot(gfn, level).store(v, Ordering::Relaxed);
    }
}
