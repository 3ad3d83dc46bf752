// SPDX-License-Identifier: GPL-2.0

//! The kernel's read section for the lockless TDP MMU walk: the RCU read
//! lock, plus the direct-map offset that turns a page table's physical
//! address into a pointer.

use crate::kcompat::{self, RcuGuard};
use crate::tdp_mmu::Section;
use core::ptr::NonNull;

/// An RCU read-side critical section in which TDP MMU page tables may be
/// walked without mmu_lock (`walk_shadow_page_lockless_begin()` ..
/// `_end()` of the TDP MMU, which is `rcu_read_lock()` .. `rcu_read_unlock()`).
///
/// Not `Send` nor `Sync`, through [`RcuGuard`]: a read section is per CPU.
///
/// # Invariants
///
/// - The RCU read lock is held while a value of this type exists (`_guard`).
/// - `page_offset` is the kernel's direct-map offset (`PAGE_OFFSET`):
///   `__va(pa) == pa + page_offset` for every page-table page.
pub(crate) struct RcuSection {
    _guard: RcuGuard,
    page_offset: u64,
}

impl RcuSection {
    /// Take the RCU read lock.
    ///
    /// # Safety
    ///
    /// - `page_offset` is `PAGE_OFFSET`, the offset of the kernel's direct
    ///   map, as `struct kvm_rs_root` carries it from C.
    #[inline(always)]
    pub(crate) unsafe fn new(page_offset: u64) -> Self {
        // INVARIANT: `rcu_read_lock()` returns a guard that holds the RCU
        // read lock until it is dropped with `self`; the caller guarantees
        // `page_offset`.
        Self {
            _guard: kcompat::rcu_read_lock(),
            page_offset,
        }
    }
}

// SAFETY: the contract of `Section`, point by point:
//
// - Accesses. `load()` is `READ_ONCE()` (`kcompat::load_u64()`) and
//   `cmpxchg()` is a fully ordered `try_cmpxchg64()` (`kcompat::cmpxchg_u64()`),
//   on SPTE addresses of page tables that are allocated (the next point).
// - Lifetime of the tables. The root table stays allocated for the
//   lifetime of the `Root` (its invariant: the vCPU holds a reference). A
//   lower table is reached only through a shadow-present non-leaf SPTE read
//   during the section; TDP MMU page tables are freed only after an RCU
//   grace period (`tdp_mmu_free_sp_rcu_callback()` via `call_rcu()`), and
//   this value holds the RCU read lock while it exists (type invariant), so
//   a table found during a borrow of it is not freed before the borrow ends.
// - `table()`. Given its precondition, `pa` is the physical address of the
//   child table (`Masks` has KVM's `SPTE_BASE_ADDR_MASK`), and
//   `pa + page_offset` is `__va(pa)` (type invariant).
unsafe impl Section for RcuSection {
    #[inline(always)]
    unsafe fn load(&self, sptep: *mut u64) -> u64 {
        // SAFETY: the preconditions of `kcompat::load_u64()`:
        // - `sptep` is aligned, and valid for reads and writes for this
        //   call: the caller guarantees an SPTE address (an index below 512
        //   into a page table) of a table allocated for this borrow of
        //   `self` (`Section::load`, and this impl's contract above).
        // - No access to the SPTE races with ours in the LKMM sense: every
        //   writer of a TDP MMU SPTE that can run concurrently uses a marked
        //   access. Lockless writers (the fast page fault) and writers under
        //   the shared mmu_lock use `try_cmpxchg64()`
        //   (`tdp_mmu_set_spte_atomic()`); writers under the exclusive
        //   mmu_lock use `kvm_tdp_mmu_write_spte()`, an atomic `xchg()`
        //   when `kvm_tdp_mmu_spte_need_atomic_update()` (a present leaf
        //   whose volatile bits a lockless writer or the CPU may set) and
        //   `WRITE_ONCE()` otherwise. The plain stores that initialise a
        //   new table (`memset64()` with `SHADOW_NONPRESENT_VALUE` in the
        //   MMU page cache, or `__GFP_ZERO`) happen before the SPTE that
        //   points to it is published (`try_cmpxchg64()` or `WRITE_ONCE()`
        //   of the parent); x86 makes stores visible in order and our load
        //   of the child depends on the address read from the parent, the
        //   same argument the C's lockless walkers rely on.
        unsafe { kcompat::load_u64(sptep) }
    }

    #[inline(always)]
    unsafe fn cmpxchg(&self, sptep: *mut u64, old: u64, new: u64) -> Result<(), u64> {
        // SAFETY: as in `load()`: the caller guarantees the address; all
        // concurrent writers are atomic or `WRITE_ONCE()`, and this is the
        // fully ordered `try_cmpxchg64()` that locklessly fixing an SPTE
        // requires (Documentation/virt/kvm/locking.rst).
        unsafe { kcompat::cmpxchg_u64(sptep, old, new) }.map(|_| ())
    }

    #[inline(always)]
    unsafe fn table(&self, pa: u64) -> Option<NonNull<u64>> {
        // `__va(pa)`: the caller passes the physical address of a page
        // table and `page_offset` is `PAGE_OFFSET` (type invariant), so the
        // sum does not wrap; `wrapping_add()` only keeps a panic branch
        // out of the fault path.
        NonNull::new(pa.wrapping_add(self.page_offset) as *mut u64)
    }
}
