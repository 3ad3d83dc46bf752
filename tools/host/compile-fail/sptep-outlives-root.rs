// expect: E0505
//
// An SPTE pointer used after the tables of the root it was found from are
// freed, while the read section (over other tables) is still alive. The
// walk borrows the root for the section (`root: &Root<'s>`), so the root's
// tables must outlive every pointer the walk returns. In the kernel: the
// vCPU's reference on its root must be held for the whole section.
use kvm_rs_host::tdp_mmu::fast_pf_get_last_sptep;
use kvm_rs_host::testing::{npt_masks, Tables};

fn main() {
    let other = Tables::new(4);
    let section = other.section();
    let tables = Tables::new(4);
    let root = tables.root();
    let sptep = fast_pf_get_last_sptep(&section, &npt_masks(), &root, 0)
        .unwrap()
        .sptep();
    drop(tables); // the root's tables are freed here ...
    let _ = sptep.read(); // ... so the SPTE pointer must not be used.
    drop(section);
}
