// expect: E0277
//
// An SPTE pointer sent to another thread: a read section is per CPU, so an
// `SptePtr` is not `Send`. A scoped thread, so that only `Send` (not
// 'static) is in question.
use kvm_rs_host::tdp_mmu::fast_pf_get_last_sptep;
use kvm_rs_host::testing::{npt_masks, Tables};

fn main() {
    let tables = Tables::new(4);
    let root = tables.root();
    let section = tables.section();
    let last = fast_pf_get_last_sptep(&section, &npt_masks(), &root, 0).unwrap();
    let sptep = last.sptep();
    std::thread::scope(|s| {
        s.spawn(move || sptep.read());
    });
}
