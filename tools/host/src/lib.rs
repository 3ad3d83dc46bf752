//! Host-side build of the kvm-rs logic.
//!
//! The modules below are the very files linked into kvm.ko (`rust/`), not
//! copies: they use no `kernel::` item, so they compile here as they are.
//! [`testing`] provides page tables in host memory and a [`Section`] over
//! them, for tests and benchmarks.
//!
//! [`Section`]: tdp_mmu::Section

#[path = "../../../rust/fast_pf.rs"]
pub mod fast_pf;
#[path = "../../../rust/spte.rs"]
pub mod spte;
#[path = "../../../rust/tdp_mmu.rs"]
pub mod tdp_mmu;

pub mod testing;
