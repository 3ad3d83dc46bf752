// expect: E0624
//
// Safe code stores a value of its choice in an SPTE: a walk to the level-4
// entry of an empty tree, then a compare-exchange of a forged present
// non-leaf SPTE (a "table pointer" to any address). A second walk would
// follow it; in kvm.ko that maps an arbitrary host page into the guest.
// `SptePtr::cmpxchg()` is private to the crate (and `unsafe`): only a
// `Fix` that the decision built stores a value.
use kvm_rs_host::tdp_mmu::fast_pf_get_last_sptep;
use kvm_rs_host::testing::{npt_masks, Tables};

fn main() {
    let tables = Tables::new(4);
    let root = tables.root();
    let section = tables.section();
    let last = fast_pf_get_last_sptep(&section, &npt_masks(), &root, 0).unwrap();
    let forged: u64 = 0xdead_b000 | (1 << 11) | 0x7; // MMU-present, RWX, not large
    let _ = last.sptep().cmpxchg(last.spte(), forged);
}
