// SPDX-License-Identifier: GPL-2.0

//! The few kernel services the fast path needs, with one face for each
//! supported kernel series: the RCU read lock, a load and a compare-exchange
//! of a `u64` that C shares, and a warning and a message printed once.
//!
//! Linux 7.3's kernel crate has them all (`kernel::sync::rcu`,
//! `kernel::sync::atomic`, `kernel::warn_on!`, `kernel::pr_warn_once!`);
//! 6.12's (`cfg(kvm_rs_6_12)`) has none of them, so there the RCU read lock
//! and the warning are C functions of the 6.12 series' glue (`mmu/kvm_rs.h`),
//! and the atomics are `core::sync::atomic`'s, which compile on x86-64 to
//! the instructions of the kernel's own (`mov` and `lock cmpxchg`). This
//! module is the only place where the two differ.

#[cfg(kvm_rs_6_12)]
use core::marker::PhantomData;
#[cfg(kvm_rs_6_12)]
use core::sync::atomic::{AtomicU64, Ordering};
#[cfg(not(kvm_rs_6_12))]
use kernel::sync::atomic::{Atomic, Full, Relaxed};

/// Holds the RCU read lock (`rcu_read_lock()`) until it is dropped
/// (`rcu_read_unlock()`). Neither `Send` nor `Sync`: a read section
/// belongs to the CPU that took it.
///
/// # Invariants
///
/// The RCU read lock is held while a value of this type exists.
#[cfg(not(kvm_rs_6_12))]
pub(crate) struct RcuGuard(#[allow(dead_code)] kernel::sync::rcu::Guard);

/// Holds the RCU read lock (`rcu_read_lock()`) until it is dropped
/// (`rcu_read_unlock()`). Neither `Send` nor `Sync`: a read section
/// belongs to the CPU that took it.
///
/// # Invariants
///
/// The RCU read lock is held while a value of this type exists.
#[cfg(kvm_rs_6_12)]
pub(crate) struct RcuGuard(PhantomData<*mut ()>);

/// `rcu_read_lock()`, until the guard is dropped.
#[cfg(not(kvm_rs_6_12))]
#[inline(always)]
pub(crate) fn rcu_read_lock() -> RcuGuard {
    // INVARIANT: the kernel crate's guard holds the lock until dropped.
    RcuGuard(kernel::sync::rcu::read_lock())
}

/// `rcu_read_lock()`, until the guard is dropped.
#[cfg(kvm_rs_6_12)]
#[inline(always)]
pub(crate) fn rcu_read_lock() -> RcuGuard {
    // SAFETY: `kvm_rs_rcu_read_lock()` is `rcu_read_lock()`, which any
    // context may take; the guard releases it exactly once, in `drop()`.
    unsafe { crate::bindings::kvm_rs_rcu_read_lock() };
    // INVARIANT: the lock was just taken and `drop()` releases it.
    RcuGuard(PhantomData)
}

#[cfg(kvm_rs_6_12)]
impl Drop for RcuGuard {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: this guard holds the read lock that `rcu_read_lock()`
        // took on this CPU (type invariant; the guard is not `Send`), and
        // it is released once, here.
        unsafe { crate::bindings::kvm_rs_rcu_read_unlock() };
    }
}

/// `READ_ONCE(*p)` of a `u64` shared with C.
///
/// # Safety
///
/// - `p` is aligned and valid for reads and writes for the call;
/// - no access to `*p` races with this one in the LKMM sense: every
///   concurrent access to it is marked (`READ_ONCE()`, `WRITE_ONCE()` or an
///   atomic operation).
#[inline(always)]
pub(crate) unsafe fn load_u64(p: *mut u64) -> u64 {
    // SAFETY: the preconditions of `from_ptr()` (alignment, validity for
    // the call, no racing plain access) are this function's.
    #[cfg(not(kvm_rs_6_12))]
    let v = unsafe { Atomic::<u64>::from_ptr(p) }.load(Relaxed);
    // SAFETY: `AtomicU64::from_ptr()` requires an aligned pointer valid for
    // reads and writes while the reference lives (this call), and no
    // non-atomic access racing with it: this function's preconditions (the
    // C side's marked accesses are single-copy atomic `u64` accesses on
    // x86-64, as the kernel's own atomics are).
    #[cfg(kvm_rs_6_12)]
    let v = unsafe { AtomicU64::from_ptr(p) }.load(Ordering::Relaxed);
    v
}

/// `try_cmpxchg64(p, &old, new)`, fully ordered: `Ok(old)` if `*p` held
/// `old` and now holds `new`, else `Err(current value)`.
///
/// # Safety
///
/// As for [`load_u64`].
#[inline(always)]
pub(crate) unsafe fn cmpxchg_u64(p: *mut u64, old: u64, new: u64) -> Result<u64, u64> {
    // SAFETY: as in `load_u64()`: its preconditions are this function's.
    #[cfg(not(kvm_rs_6_12))]
    let r = unsafe { Atomic::<u64>::from_ptr(p) }.cmpxchg(old, new, Full);
    // SAFETY: as in `load_u64()`. `SeqCst` on both outcomes is a
    // `lock cmpxchg` on x86-64, the instruction of `try_cmpxchg64()`, and as
    // fully ordered.
    #[cfg(kvm_rs_6_12)]
    let r = unsafe { AtomicU64::from_ptr(p) }.compare_exchange(
        old,
        new,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    r
}

/// A flag for "once": set by the first [`Once::first`] that returns `true`.
pub(crate) struct Once(
    #[cfg(not(kvm_rs_6_12))] kernel::sync::atomic::AtomicFlag,
    #[cfg(kvm_rs_6_12)] core::sync::atomic::AtomicBool,
);

impl Once {
    /// A flag not yet set.
    pub(crate) const fn new() -> Self {
        #[cfg(not(kvm_rs_6_12))]
        let f = kernel::sync::atomic::AtomicFlag::new(false);
        #[cfg(kvm_rs_6_12)]
        let f = core::sync::atomic::AtomicBool::new(false);
        Self(f)
    }

    /// `true` the first time it is called, `false` after (any CPU).
    #[inline(always)]
    pub(crate) fn first(&self) -> bool {
        #[cfg(not(kvm_rs_6_12))]
        let was = self.0.xchg(true, Relaxed);
        #[cfg(kvm_rs_6_12)]
        let was = self.0.swap(true, Ordering::Relaxed);
        !was
    }
}

/// `WARN_ON_ONCE(true)`: a full warning the first time this call site is
/// reached, nothing after. On 6.12 the warning is the C glue's
/// `kvm_rs_warn()` (its location, not this one, is in the report).
macro_rules! warn_on_once {
    () => {{
        static ONCE: $crate::kcompat::Once = $crate::kcompat::Once::new();
        if ONCE.first() {
            #[cfg(not(kvm_rs_6_12))]
            kernel::warn_on!(true);
            // SAFETY: `kvm_rs_warn()` is `WARN_ON(1)`, callable anywhere.
            #[cfg(kvm_rs_6_12)]
            unsafe {
                $crate::bindings::kvm_rs_warn()
            };
        }
    }};
}
pub(crate) use warn_on_once;

/// `pr_warn_once()`: the message the first time this call site is reached.
macro_rules! pr_warn_once {
    ($($arg:tt)*) => {{
        static ONCE: $crate::kcompat::Once = $crate::kcompat::Once::new();
        if ONCE.first() {
            kernel::pr_warn!($($arg)*);
        }
    }};
}
pub(crate) use pr_warn_once;
