//! `Section` wrappers for tests: recording, interfering ("another CPU"), and
//! a fake one over no memory at all.

use core::cell::{Cell, RefCell};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};
use kvm_rs_host::tdp_mmu::Section;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Load {
        ptr: u64,
        val: u64,
    },
    Cmpxchg {
        ptr: u64,
        old: u64,
        new: u64,
        ok: bool,
        found: u64,
    },
}

/// What another CPU does to the SPTE right before our access.
pub type Hook<'h> = Box<dyn FnMut(&AtomicU64, usize) + 'h>;

/// Wraps a section over real memory: records every access, and runs a hook
/// on the SPTE before each load (`before_load`, with the load's index) and
/// before each compare-exchange (`before_cmpxchg`, with the cmpxchg's
/// index), simulating another CPU writing it between our accesses.
pub struct HookSection<'h, S: Section> {
    pub inner: S,
    pub ops: RefCell<Vec<Op>>,
    pub before_load: RefCell<Option<Hook<'h>>>,
    pub before_cmpxchg: RefCell<Option<Hook<'h>>>,
    loads: Cell<usize>,
    cmpxchgs: Cell<usize>,
}

impl<'h, S: Section> HookSection<'h, S> {
    pub fn new(inner: S) -> Self {
        HookSection {
            inner,
            ops: RefCell::new(Vec::new()),
            before_load: RefCell::new(None),
            before_cmpxchg: RefCell::new(None),
            loads: Cell::new(0),
            cmpxchgs: Cell::new(0),
        }
    }
    pub fn on_load(self, f: impl FnMut(&AtomicU64, usize) + 'h) -> Self {
        *self.before_load.borrow_mut() = Some(Box::new(f));
        self
    }
    pub fn on_cmpxchg(self, f: impl FnMut(&AtomicU64, usize) + 'h) -> Self {
        *self.before_cmpxchg.borrow_mut() = Some(Box::new(f));
        self
    }
    pub fn ops(&self) -> Vec<Op> {
        self.ops.borrow().clone()
    }
    pub fn loads(&self) -> Vec<(u64, u64)> {
        self.ops
            .borrow()
            .iter()
            .filter_map(|o| match *o {
                Op::Load { ptr, val } => Some((ptr, val)),
                _ => None,
            })
            .collect()
    }
    pub fn cmpxchgs(&self) -> Vec<Op> {
        self.ops
            .borrow()
            .iter()
            .copied()
            .filter(|o| matches!(o, Op::Cmpxchg { .. }))
            .collect()
    }
    pub fn successful_cmpxchgs(&self) -> Vec<(u64, u64)> {
        self.ops
            .borrow()
            .iter()
            .filter_map(|o| match *o {
                Op::Cmpxchg {
                    old, new, ok: true, ..
                } => Some((old, new)),
                _ => None,
            })
            .collect()
    }
}

// SAFETY: forwards every operation to `inner`, whose contract it inherits.
// The hooks act as another CPU: they access the same live SPTE atomically,
// and the tests' hooks store only leaf or non-present values (or the value
// found), never a table pointer, so `inner`'s tables stay the only ones a
// walk can reach.
unsafe impl<S: Section> Section for HookSection<'_, S> {
    unsafe fn load(&self, sptep: *mut u64) -> u64 {
        let i = self.loads.get();
        self.loads.set(i + 1);
        if let Some(h) = self.before_load.borrow_mut().as_mut() {
            // SAFETY: the caller guarantees `sptep` is a live SPTE.
            h(unsafe { AtomicU64::from_ptr(sptep) }, i);
        }
        // SAFETY: forwarded contract.
        let val = unsafe { self.inner.load(sptep) };
        self.ops.borrow_mut().push(Op::Load {
            ptr: sptep as u64,
            val,
        });
        val
    }

    unsafe fn cmpxchg(&self, sptep: *mut u64, old: u64, new: u64) -> Result<(), u64> {
        let i = self.cmpxchgs.get();
        self.cmpxchgs.set(i + 1);
        if let Some(h) = self.before_cmpxchg.borrow_mut().as_mut() {
            // SAFETY: as in `load()`.
            h(unsafe { AtomicU64::from_ptr(sptep) }, i);
        }
        // SAFETY: forwarded contract.
        let r = unsafe { self.inner.cmpxchg(sptep, old, new) };
        let found = match r {
            Ok(()) => old,
            Err(v) => v,
        };
        self.ops.borrow_mut().push(Op::Cmpxchg {
            ptr: sptep as u64,
            old,
            new,
            ok: r.is_ok(),
            found,
        });
        r
    }

    unsafe fn table(&self, pa: u64) -> Option<NonNull<u64>> {
        // SAFETY: forwarded precondition: `pa` is the child address of a
        // shadow-present non-leaf SPTE loaded through `inner` during this
        // borrow.
        unsafe { self.inner.table(pa) }
    }
}

/// A section over no memory: pointers are never dereferenced. Each load
/// returns the next value of a script (so the "same" SPTE can read
/// differently each time); each compare-exchange succeeds or fails per a
/// second script. Records every access.
pub struct FakeSection {
    pub values: Vec<u64>,
    pub cas_ok: Vec<bool>,
    pub table_none_pa: Option<u64>,
    next_val: Cell<usize>,
    next_cas: Cell<usize>,
    pub ops: RefCell<Vec<Op>>,
}

impl FakeSection {
    pub fn new(values: Vec<u64>, cas_ok: Vec<bool>) -> Self {
        assert!(!values.is_empty());
        FakeSection {
            values,
            cas_ok,
            table_none_pa: None,
            next_val: Cell::new(0),
            next_cas: Cell::new(0),
            ops: RefCell::new(Vec::new()),
        }
    }
}

// SAFETY: no memory is accessed at all: the addresses are only recorded,
// so any address is an SPTE address "valid" for this section.
unsafe impl Section for FakeSection {
    unsafe fn load(&self, sptep: *mut u64) -> u64 {
        let i = self.next_val.get();
        self.next_val.set(i + 1);
        let val = self.values[i % self.values.len()];
        self.ops.borrow_mut().push(Op::Load {
            ptr: sptep as u64,
            val,
        });
        val
    }

    unsafe fn cmpxchg(&self, sptep: *mut u64, old: u64, new: u64) -> Result<(), u64> {
        let i = self.next_cas.get();
        self.next_cas.set(i + 1);
        let ok = self.cas_ok.get(i).copied().unwrap_or(true);
        let found = if ok { old } else { old ^ 0x8000 };
        self.ops.borrow_mut().push(Op::Cmpxchg {
            ptr: sptep as u64,
            old,
            new,
            ok,
            found,
        });
        if ok {
            Ok(())
        } else {
            Err(found)
        }
    }

    unsafe fn table(&self, pa: u64) -> Option<NonNull<u64>> {
        if Some(pa) == self.table_none_pa {
            return None;
        }
        NonNull::new(pa as *mut u64)
    }
}

/// Read a live SPTE (for reference walkers over host tables).
///
/// Safe only by the tests' convention that `ptr` is the address of an SPTE
/// in a live `Tables` (the reference walker follows the same pointers as
/// the walk).
pub fn read_host(ptr: u64) -> u64 {
    // SAFETY: callers pass addresses of SPTEs in live `Tables`.
    unsafe { AtomicU64::from_ptr(ptr as *mut u64) }.load(Ordering::Relaxed)
}
