// expect: E0597
//
// The `Outcome` of the fast page fault kept past the end of its read
// section: the tracepoint that reads `*sptep` must run inside the section,
// so the outcome cannot outlive it.
use kvm_rs_host::fast_pf::{fast_page_fault, Fault};
use kvm_rs_host::testing::{npt_masks, Tables};

fn main() {
    let tables = Tables::new(4);
    let root = tables.root();
    let outcome;
    {
        let section = tables.section();
        outcome = fast_page_fault(&section, &npt_masks(), &root, &Fault::default(), || {});
    } // the read section ends here ...
    if let Ok(last) = outcome.last {
        let _ = last.sptep().read(); // ... so its SPTE pointer must not be used.
    }
}
