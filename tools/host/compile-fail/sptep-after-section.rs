// expect: E0505
//
// An SPTE pointer used after its read section has ended: the section is
// moved (dropped) while the `SptePtr` still borrows it. In the kernel this
// is a use of `sptep` after `rcu_read_unlock()`.
use kvm_rs_host::tdp_mmu::fast_pf_get_last_sptep;
use kvm_rs_host::testing::{npt_masks, Tables};

fn main() {
    let tables = Tables::new(4);
    let root = tables.root();
    let section = tables.section();
    let last = fast_pf_get_last_sptep(&section, &npt_masks(), &root, 0).unwrap();
    let sptep = last.sptep();
    drop(section); // the read section ends here ...
    let _ = sptep.read(); // ... so the SPTE pointer must not be used.
}
