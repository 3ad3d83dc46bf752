// expect: E0451
//
// Safe code lies to the decision about where a value was read: a level-1
// leaf is fixable at level 1, but the same bits at the level-4 entry are a
// table pointer. `LastSpte`'s fields are private: only the walk builds one,
// with the level and value it found at the pointer.
use kvm_rs_host::fast_pf::{plan, Action, Fault};
use kvm_rs_host::tdp_mmu::{fast_pf_get_last_sptep, LastSpte};
use kvm_rs_host::testing::{npt_masks, Tables};

fn main() {
    let masks = npt_masks();
    let tables = Tables::new(4);
    let root = tables.root();
    let section = tables.section();
    let walk = fast_pf_get_last_sptep(&section, &masks, &root, 0).unwrap();
    // A write-protected, MMU-writable 4K leaf at an address of our choice.
    let leaf: u64 = 0xdead_b000 | (1 << 11) | (1 << 10) | 0x5;
    let lie = LastSpte {
        sptep: walk.sptep(), // the level-4 entry
        spte: leaf,
        level: 1,
    };
    let fault = Fault {
        gfn: 0,
        write: true,
        permissions: 0,
        slot_dirty_tracked: false,
    };
    if let Action::Fix(fix) = plan(&masks, &fault, &lie) {
        let _ = fix.apply(|| {});
    }
}
