// SPDX-License-Identifier: GPL-2.0

//! Lockless walk of a TDP MMU page-table tree.
//!
//! Replaces `kvm_tdp_mmu_fast_pf_get_last_sptep()` and
//! `kvm_tdp_mmu_get_walk()` of `arch/x86/kvm/mmu/tdp_mmu.c`, with the
//! semantics of 7.3's `tdp_iter` for a walk over a single gfn: start at the
//! root's entry for the gfn, step down only through shadow-present non-leaf
//! SPTEs, stop at level 1 (4K). Unlike `tdp_iter`, which reads an SPTE once
//! to visit it and again before stepping down, each SPTE is read exactly
//! once, and the value the decision sees is the value the walk followed.
//!
//! # The read section
//!
//! Page tables of the TDP MMU are freed only after an RCU grace period
//! (`tdp_mmu_free_sp_rcu_callback()`), so a reader inside an RCU read-side
//! critical section may follow any pointer it read in that section. That
//! contract ("the returned sptep must not be used after
//! `kvm_tdp_mmu_walk_lockless_end()`") is a type here: a walk borrows a
//! [`Section`] and returns a [`SptePtr`] that borrows it too, so a use of
//! the pointer after the section has ended is a borrow-check error.
//!
//! The kernel's section is an RCU read guard; host tests use sections over
//! page tables they own.

use crate::spte::{self, Masks, PG_LEVEL_4K, PT64_ROOT_MAX_LEVEL};
use core::ptr::NonNull;

/// A period during which TDP MMU page tables are not freed, with the
/// primitive operations on SPTEs that are legal during it.
///
/// # Safety
///
/// An implementor guarantees that, for as long as a value of it is borrowed,
/// every page table reachable from a root the caller passes in (through
/// shadow-present non-leaf SPTEs read during the borrow) stays allocated,
/// and that `load()` and `cmpxchg()` are single-copy atomic 64-bit accesses
/// with the semantics documented on them.
pub unsafe trait Section {
    /// Read an SPTE once (`READ_ONCE()`, `kvm_tdp_mmu_read_spte()`).
    ///
    /// # Safety
    ///
    /// `sptep` points to an SPTE in a page table that is live for the
    /// section, i.e. it was derived from a root or a [`SptePtr`] of this
    /// section.
    unsafe fn load(&self, sptep: NonNull<u64>) -> u64;

    /// Fully ordered compare-exchange (`try_cmpxchg64()`): store `new` if the
    /// SPTE still holds `old`. Returns `Ok(())` on success, or `Err(current)`
    /// with the value found.
    ///
    /// # Safety
    ///
    /// As for [`Section::load`].
    unsafe fn cmpxchg(&self, sptep: NonNull<u64>, old: u64, new: u64) -> Result<(), u64>;

    /// The pointer to the page table at physical address `pa`
    /// (`__va()`), or `None` for a null result.
    fn table(&self, pa: u64) -> Option<NonNull<u64>>;
}

/// A pointer to an SPTE that may be read and compare-exchanged for the
/// lifetime `'s` of the [`Section`] it was found in, and not after.
///
/// ```compile_fail,E0505
/// # use kvm_rs_host::tdp_mmu::*;
/// # use kvm_rs_host::testing::*;
/// let tables = Tables::new(4);
/// let section = tables.section();
/// let walk = fast_pf_get_last_sptep(&section, &tables.root(), 0).unwrap();
/// drop(section); // the read section ends here ...
/// let _ = walk.sptep.read(); // ... so the SPTE pointer must not be used.
/// ```
#[derive(Debug)]
pub struct SptePtr<'s, S: Section> {
    ptr: NonNull<u64>,
    section: &'s S,
}

// Not derived: a derive would require `S: Copy`, but only the reference is
// copied.
impl<S: Section> Clone for SptePtr<'_, S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S: Section> Copy for SptePtr<'_, S> {}

impl<'s, S: Section> SptePtr<'s, S> {
    /// Read the SPTE once.
    #[inline(always)]
    pub fn read(&self) -> u64 {
        // SAFETY: `ptr` was derived during `section` from a live root through
        // shadow-present SPTEs (the type invariant set up in `walk_to()`), and
        // `section` is still borrowed, so the table holding it is still
        // allocated.
        unsafe { self.section.load(self.ptr) }
    }

    /// Compare-exchange the SPTE from `old` to `new` (full barrier).
    #[inline(always)]
    pub fn cmpxchg(&self, old: u64, new: u64) -> Result<(), u64> {
        // SAFETY: as in `read()`.
        unsafe { self.section.cmpxchg(self.ptr, old, new) }
    }

    /// The raw address, for the tracepoint and for comparisons. Using it
    /// after the section ends is the caller's business.
    #[inline(always)]
    pub fn as_ptr(&self) -> *mut u64 {
        self.ptr.as_ptr()
    }
}

/// A TDP MMU root as the walk needs it.
#[derive(Clone, Copy, Debug)]
pub struct Root {
    /// The root page table (`root->spt`), or `None` for no root.
    pub spt: Option<NonNull<u64>>,
    /// `root->role.level`: 4 or 5 for TDP roots.
    pub level: u32,
    /// `kvm_gfn_root_bits()`: gfn bits ORed in to index (TDX shared bit).
    pub gfn_bits: u64,
}

/// Why a walk could not start: `tdp_iter_start()`'s `WARN_ON_ONCE()` cases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkError {
    /// No root, or a root level outside 1..=5.
    InvalidRoot,
    /// The gfn already has bits of `gfn_bits` set.
    GfnOutOfRange,
}

/// The result of a fast-pf walk: the last SPTE visited, its level, and the
/// value read from it.
#[derive(Debug)]
pub struct LastSpte<'s, S: Section> {
    /// Pointer to the last SPTE visited (a leaf, or a non-present entry).
    pub sptep: SptePtr<'s, S>,
    /// The value read from it by the walk.
    pub spte: u64,
    /// Its level (`sp->role.level` of the table holding it).
    pub level: u32,
}

impl<S: Section> Clone for LastSpte<'_, S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S: Section> Copy for LastSpte<'_, S> {}

#[inline(always)]
fn check_root(root: &Root, gfn: u64) -> Result<NonNull<u64>, WalkError> {
    let spt = match root.spt {
        Some(spt) if (1..=PT64_ROOT_MAX_LEVEL).contains(&root.level) => spt,
        _ => return Err(WalkError::InvalidRoot),
    };
    if root.gfn_bits != 0 && gfn >= root.gfn_bits {
        return Err(WalkError::GfnOutOfRange);
    }
    Ok(spt)
}

/// Walk from `root` towards `gfn`, calling `visit` with each SPTE read, and
/// return the last one.
#[inline(always)]
fn walk_to<'s, S: Section>(
    section: &'s S,
    masks: &Masks,
    root: &Root,
    gfn: u64,
    mut visit: impl FnMut(u32, u64),
) -> Result<LastSpte<'s, S>, WalkError> {
    let mut table = check_root(root, gfn)?;
    let mut level = root.level;
    let addr_gfn = gfn | root.gfn_bits;
    loop {
        // spte_index() < 512 and `table` is a page of 512 SPTEs, so the
        // entry is inside the table.
        let ptr = table
            .as_ptr()
            .wrapping_add(spte::spte_index(addr_gfn, level));
        // INVARIANT: `ptr` is inside a live page table of this section: the
        // root, or a table found through a shadow-present non-leaf SPTE read
        // in this section.
        let sptep = SptePtr {
            // A pointer inside a non-null table is non-null.
            ptr: NonNull::new(ptr).unwrap_or(table),
            section,
        };
        let spte = sptep.read();
        visit(level, spte);
        if level <= PG_LEVEL_4K {
            return Ok(LastSpte { sptep, spte, level });
        }
        match masks
            .child_pt_pa(spte, level)
            .and_then(|pa| section.table(pa))
        {
            Some(child) => {
                table = child;
                level = level.wrapping_sub(1);
            }
            None => return Ok(LastSpte { sptep, spte, level }),
        }
    }
}

/// `kvm_tdp_mmu_fast_pf_get_last_sptep()`: the last-level SPTE for `gfn`.
///
/// The pointer it returns is valid for the section `section` borrows, and
/// the value was read exactly once.
#[inline]
pub fn fast_pf_get_last_sptep<'s, S: Section>(
    section: &'s S,
    masks: &Masks,
    root: &Root,
    gfn: u64,
) -> Result<LastSpte<'s, S>, WalkError> {
    walk_to(section, masks, root, gfn, |_, _| {})
}

/// `kvm_tdp_mmu_get_walk()`: record the SPTE of every level visited for
/// `gfn` in `sptes[level]`, and return the level of the last one.
#[inline]
pub fn get_walk<S: Section>(
    section: &S,
    masks: &Masks,
    root: &Root,
    gfn: u64,
    sptes: &mut [u64; PT64_ROOT_MAX_LEVEL as usize + 1],
) -> Result<u32, WalkError> {
    let last = walk_to(section, masks, root, gfn, |level, spte| {
        if let Some(slot) = sptes.get_mut(level as usize) {
            *slot = spte;
        }
    })?;
    Ok(last.level)
}
