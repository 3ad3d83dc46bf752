// expect: E0451
//
// Safe code builds the fix itself, with a value of its choice, to have
// `Fix::apply()` store it. `Fix`'s fields are private: only
// `fast_pf::plan()` builds one, from a walk's own snapshot.
use kvm_rs_host::fast_pf::Fix;
use kvm_rs_host::tdp_mmu::fast_pf_get_last_sptep;
use kvm_rs_host::testing::{npt_masks, Tables};

fn main() {
    let tables = Tables::new(4);
    let root = tables.root();
    let section = tables.section();
    let last = fast_pf_get_last_sptep(&section, &npt_masks(), &root, 0).unwrap();
    let forged: u64 = 0xdead_b000 | (1 << 11) | 0x7;
    let fix = Fix {
        sptep: last.sptep(),
        old: last.spte(),
        new: forged,
    };
    let _ = fix.apply(|| {});
}
