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
//!
//! # What the types guarantee, and who vouches for the rest
//!
//! Every pointer the walk follows comes from one of two places, and both are
//! vouched for by an `unsafe` construct, never by a safe call:
//!
//! - the root table: a [`Root`] is built only by the `unsafe fn`
//!   [`Root::new`], whose caller guarantees that the table stays allocated
//!   for the root's lifetime (the vCPU holds a reference on it);
//! - a lower table: its address is read from a shadow-present non-leaf SPTE
//!   during the section and translated by [`Section::table`], which an
//!   `unsafe impl` of [`Section`] guarantees to yield a table that stays
//!   allocated until the section ends (TDP MMU tables are RCU-freed).
//!
//! The SPTE bits that decide "shadow-present non-leaf" and the address
//! bits come from a [`Masks`], built only by the `unsafe fn`
//! [`Masks::new`] with KVM's values. Safe code can combine these values
//! only in ways the borrow checker accepts: an [`SptePtr`] cannot outlive
//! the section nor the root it was found from, and cannot be sent to
//! another thread (the compile-fail cases in `tools/host/compile-fail/`).
//!
//! Soundness covers the values stored, not only the addresses: a table
//! pointer the walk follows must be one KVM wrote. So no safe function
//! stores a value its caller chose: [`SptePtr`]'s compare-exchange is an
//! `unsafe fn` private to the crate, and its one caller stores only the
//! leaf the decision derived from the walk's own snapshot
//! (`fast_pf::Fix`).

use crate::spte::{self, Masks, PG_LEVEL_4K, PT64_ROOT_MAX_LEVEL};
use core::marker::PhantomData;
use core::mem::MaybeUninit;
use core::ptr::NonNull;

/// A period during which TDP MMU page tables are not freed, with the
/// primitive operations on SPTEs that are legal during it.
///
/// An SPTE address here is the address of a 64-bit SPTE in a page table of
/// 512 of them: the root table of a [`Root`] plus an index below 512, or a
/// table returned by [`Section::table`] plus an index below 512. What an
/// address means (a kernel virtual address, a host test's table, a key of a
/// model checker) is up to the implementor; the walk only computes and
/// passes them.
///
/// # Safety
///
/// An implementor guarantees, for as long as a value of it is borrowed (the
/// section):
///
/// - `load()` and `cmpxchg()` at an SPTE address of the root table of any
///   [`Root`] alive during the borrow, or of a table returned by `table()`
///   during the borrow, access that SPTE with single-copy atomic 64-bit
///   accesses, with the semantics documented on them, and nothing else;
/// - `table()` called with the child address ([`Masks::child_pt_pa`]) of a
///   shadow-present non-leaf SPTE that `load()` read during the borrow
///   returns the address of that child page table, which stays allocated
///   until the borrow ends, or `None`.
pub unsafe trait Section {
    /// Read an SPTE once (`READ_ONCE()`, `kvm_tdp_mmu_read_spte()`).
    ///
    /// # Safety
    ///
    /// - `sptep` is an SPTE address, in the sense of the trait's contract,
    ///   of a table that is live for this borrow of `self`: it was derived
    ///   from the root table of a live [`Root`] or from a table returned by
    ///   [`Section::table`] during this borrow.
    unsafe fn load(&self, sptep: *mut u64) -> u64;

    /// Fully ordered compare-exchange (`try_cmpxchg64()`): store `new` if the
    /// SPTE still holds `old`. Returns `Ok(())` on success, or `Err(current)`
    /// with the value found.
    ///
    /// # Safety
    ///
    /// - As for [`Section::load`];
    /// - `new` is not shadow-present, or is a leaf at the level of the
    ///   table holding `sptep` with the address bits of a leaf KVM installed
    ///   there (see [`SptePtr::cmpxchg`]): `table()`'s guarantee rests on
    ///   every table pointer a walk reads having been written by KVM.
    unsafe fn cmpxchg(&self, sptep: *mut u64, old: u64, new: u64) -> Result<(), u64>;

    /// The address of the page table at physical address `pa` (`__va()`),
    /// or `None` for a null result.
    ///
    /// # Safety
    ///
    /// - `pa` is [`Masks::child_pt_pa`] of a shadow-present non-leaf SPTE
    ///   read by [`Section::load`] during this borrow of `self`, with the
    ///   [`Masks`] KVM set.
    unsafe fn table(&self, pa: u64) -> Option<NonNull<u64>>;
}

/// A pointer to an SPTE that may be read and compare-exchanged for the
/// lifetime `'s` of the [`Section`] it was found in, and not after.
///
/// The lifetime is what makes `kvm_tdp_mmu_walk_lockless_end()`'s rule ("the
/// returned sptep must not be used after ...") a compile-time check: a use
/// after the section ends is a borrow error, and so is letting a
/// [`LastSpte`] or an `Outcome` escape the section. It is not `Send`: a
/// section is per CPU. `tools/host/compile-fail/` has one case for each of
/// these, checked for its error code by `tools/host/compile-fail.sh`.
///
/// # Invariants
///
/// - `ptr` is an SPTE address (see [`Section`]) in the root table of a
///   [`Root`] that outlives `'s`, or in a table returned by
///   `section.table()` during the borrow `'s`, so `section.load(ptr)` and
///   `section.cmpxchg(ptr, ..)` meet their preconditions for all of `'s`.
#[derive(Debug)]
pub struct SptePtr<'s, S: Section> {
    ptr: *mut u64,
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
        // SAFETY: by the type invariant, `ptr` is an SPTE address of a table
        // that is live for the borrow `'s` of `section`, which `self` still
        // holds.
        unsafe { self.section.load(self.ptr) }
    }

    /// Compare-exchange the SPTE from `old` to `new` (full barrier).
    ///
    /// Not public, and `unsafe`: a later walk follows a shadow-present
    /// non-leaf value as a table pointer, so what may be stored is part of
    /// the walk's soundness, not only where. The crate's one caller is
    /// [`Fix::apply`](crate::fast_pf::Fix::apply), which stores only what
    /// the decision built.
    ///
    /// # Safety
    ///
    /// - `new` is not shadow-present, or it is a leaf at the level of this
    ///   SPTE ([`spte::is_last`]) with the address bits of a leaf KVM
    ///   installed here: it maps only memory KVM mapped, and no walk will
    ///   read it as a table pointer.
    #[inline(always)]
    pub(crate) unsafe fn cmpxchg(&self, old: u64, new: u64) -> Result<(), u64> {
        // SAFETY: by the type invariant, `ptr` is an SPTE address of a
        // table that is live for the borrow `'s`, as in `read()`; the value
        // stored is one the caller guarantees no walk follows (`# Safety`).
        unsafe { self.section.cmpxchg(self.ptr, old, new) }
    }

    /// The raw address, for the tracepoint and for comparisons. Using it
    /// to access the SPTE after the section ends is the caller's business.
    #[inline(always)]
    pub fn as_ptr(&self) -> *mut u64 {
        self.ptr
    }
}

/// A TDP MMU root as the walk needs it (`struct kvm_mmu_page` of a root:
/// its table, level and gfn bits).
///
/// # Invariants
///
/// - If `spt` is `Some`, it is the address of a root page table of 512 SPTEs
///   of a TDP MMU page-table tree, that stays allocated for `'r`, whose
///   SPTEs are accessed only as the [`Section`] contract allows, and whose
///   lower tables are freed only as the [`Section`]s this root is walked in
///   allow (in the kernel: after an RCU grace period).
/// - `level` is the level of that table (`root->role.level`), and
///   `gfn_bits` the root's `kvm_gfn_root_bits()`, so that the walk reads a
///   leaf only as a leaf and a non-leaf SPTE only as a table pointer.
#[derive(Clone, Copy, Debug)]
pub struct Root<'r> {
    spt: Option<NonNull<u64>>,
    level: u32,
    gfn_bits: u64,
    _table: PhantomData<&'r [u64; 512]>,
}

impl<'r> Root<'r> {
    /// A root with table `spt` (`root->spt`, or NULL for no root), level
    /// `level` (`root->role.level`) and `kvm_gfn_root_bits()` `gfn_bits`.
    ///
    /// # Safety
    ///
    /// If `spt` is not null:
    ///
    /// - it is the root table of a TDP MMU page-table tree (a vCPU's direct
    ///   root in the kernel) that stays allocated for `'r`: the caller holds
    ///   a reference on it (`tdp_mmu_root_count`) for all of `'r`;
    /// - its SPTEs and those of its lower tables are written only atomically
    ///   or as the [`Section`] contract allows, and its lower tables are
    ///   freed only after every [`Section`] it is walked in that may have
    ///   read a pointer to them has ended (RCU in the kernel);
    /// - `level` is its level and `gfn_bits` its gfn bits, as KVM set them.
    // Not `const`: `NonNull::new()` is const only since Rust 1.85, and
    // 6.12's clippy.toml sets an MSRV of 1.78.
    #[inline(always)]
    pub unsafe fn new(spt: *mut u64, level: u32, gfn_bits: u64) -> Self {
        // INVARIANT: the caller's guarantees above are the invariants.
        Self {
            spt: NonNull::new(spt),
            level,
            gfn_bits,
            _table: PhantomData,
        }
    }

    /// The root table, or `None` for no root.
    #[inline(always)]
    pub const fn spt(&self) -> Option<NonNull<u64>> {
        self.spt
    }

    /// The root's level (`root->role.level`).
    #[inline(always)]
    pub const fn level(&self) -> u32 {
        self.level
    }

    /// `kvm_gfn_root_bits()`.
    #[inline(always)]
    pub const fn gfn_bits(&self) -> u64 {
        self.gfn_bits
    }
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
///
/// Built only by the walk: its fields are private, so the level and value
/// the decision trusts are the ones found at `sptep`, never ones safe code
/// chose (a level-1 leaf would be a table pointer at level 4).
///
/// # Invariants
///
/// - `sptep` is the SPTE the walk ended at in the table of level `level`
///   (1..=5), and `spte` the value the walk read there, once, during the
///   section `'s`.
#[derive(Debug)]
pub struct LastSpte<'s, S: Section> {
    sptep: SptePtr<'s, S>,
    spte: u64,
    level: u32,
}

impl<'s, S: Section> LastSpte<'s, S> {
    /// Pointer to the last SPTE visited (a leaf, or a non-present entry).
    #[inline(always)]
    pub fn sptep(&self) -> SptePtr<'s, S> {
        self.sptep
    }

    /// The value the walk read from it.
    #[inline(always)]
    pub fn spte(&self) -> u64 {
        self.spte
    }

    /// Its level (`sp->role.level` of the table holding it): 1..=5.
    #[inline(always)]
    pub fn level(&self) -> u32 {
        self.level
    }
}

impl<S: Section> Clone for LastSpte<'_, S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S: Section> Copy for LastSpte<'_, S> {}

/// The root table of `root`, if a walk for `gfn` can start from it.
#[inline(always)]
fn check_root(root: &Root<'_>, gfn: u64) -> Result<NonNull<u64>, WalkError> {
    let spt = match root.spt {
        Some(spt) if (1..=PT64_ROOT_MAX_LEVEL).contains(&root.level) => spt,
        _ => return Err(WalkError::InvalidRoot),
    };
    if root.gfn_bits != 0 && gfn >= root.gfn_bits {
        return Err(WalkError::GfnOutOfRange);
    }
    Ok(spt)
}

/// Walk from `root` towards `gfn`, calling `visit` with the level (1..=5)
/// and value of each SPTE read, and return the last one.
#[inline(always)]
fn walk_to<'s, S: Section>(
    section: &'s S,
    masks: &Masks,
    root: &Root<'s>,
    gfn: u64,
    mut visit: impl FnMut(u32, u64),
) -> Result<LastSpte<'s, S>, WalkError> {
    let mut table = check_root(root, gfn)?;
    // 1..=PT64_ROOT_MAX_LEVEL (check_root()); it only decreases, and never
    // below PG_LEVEL_4K (see the loop).
    let mut level = root.level;
    let addr_gfn = gfn | root.gfn_bits;
    loop {
        // spte_index() < 512 and `table` has 512 SPTEs, so `ptr` is an SPTE
        // address of `table`. `wrapping_add()` rather than `add()`: the
        // section, not this code, decides what an address means (host
        // models use addresses that are not allocations), and
        // `wrapping_add()` has no in-bounds precondition to break.
        let ptr = table
            .as_ptr()
            .wrapping_add(spte::spte_index(addr_gfn, level));
        // INVARIANT: `ptr` is an SPTE address of the root table of `root`,
        // which outlives `'s` (`&Root<'s>`), or of a table returned by
        // `section.table()` during `'s` (below).
        let sptep = SptePtr { ptr, section };
        let spte = sptep.read();
        visit(level, spte);
        // INVARIANT (each `LastSpte` below): `sptep` is in the table of
        // level `level`, and `spte` was just read from it.
        if level <= PG_LEVEL_4K {
            return Ok(LastSpte { sptep, spte, level });
        }
        let Some(pa) = masks.child_pt_pa(spte, level) else {
            return Ok(LastSpte { sptep, spte, level });
        };
        // SAFETY: `pa` is `child_pt_pa()` of `spte`, which `section.load()`
        // just read during `'s` and found shadow-present and not a leaf
        // (`child_pt_pa()` returns `None` otherwise); `masks` are KVM's by
        // the invariant of `Masks`.
        match unsafe { section.table(pa) } {
            Some(child) => {
                table = child;
                // `level > PG_LEVEL_4K` (checked above), so this does not
                // wrap and stays >= PG_LEVEL_4K.
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
    root: &Root<'s>,
    gfn: u64,
) -> Result<LastSpte<'s, S>, WalkError> {
    walk_to(section, masks, root, gfn, |_, _| {})
}

/// `kvm_tdp_mmu_get_walk()`: record the SPTE of every level visited for
/// `gfn` in `sptes[level]`, and return the level of the last one.
///
/// `sptes` may be uninitialised, as the C caller's array is; only the
/// elements of the levels visited are written.
#[inline]
pub fn get_walk<S: Section>(
    section: &S,
    masks: &Masks,
    root: &Root<'_>,
    gfn: u64,
    sptes: &mut [MaybeUninit<u64>; PT64_ROOT_MAX_LEVEL as usize + 1],
) -> Result<u32, WalkError> {
    let last = walk_to(section, masks, root, gfn, |level, spte| {
        // `level` is in 1..=PT64_ROOT_MAX_LEVEL (`walk_to()`), so the slot
        // always exists; `get_mut()` rather than indexing keeps a panic
        // branch out of the fault path.
        if let Some(slot) = sptes.get_mut(level as usize) {
            slot.write(spte);
        }
    })?;
    Ok(last.level)
}
