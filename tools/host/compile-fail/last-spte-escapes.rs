// expect: E0515
//
// A `LastSpte` returned out of the function whose read section found it:
// the section is a local of the function, so the walk's result cannot
// leave it.
use kvm_rs_host::tdp_mmu::{fast_pf_get_last_sptep, LastSpte};
use kvm_rs_host::testing::{npt_masks, HostSection, Tables};

fn last<'t>(tables: &'t Tables) -> LastSpte<'t, HostSection<'t>> {
    let section = tables.section();
    fast_pf_get_last_sptep(&section, &npt_masks(), &tables.root(), 0).unwrap()
}

fn main() {
    let tables = Tables::new(4);
    let _ = last(&tables).sptep().read();
}
