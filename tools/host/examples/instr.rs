//! Run N faults of one kind, for instruction counting under callgrind
//! (see instr.sh): `instr <level> <fixable|spurious|nonpresent> <fault|floor> <n>`.

#[path = "../benches/workload.rs"]
mod workload;
use std::hint::black_box;
use workload::*;

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let level: u32 = a[1].parse().unwrap();
    let case = match a[2].as_str() {
        "fixable" => Case::Fixable,
        "spurious" => Case::Spurious,
        _ => Case::NonPresent,
    };
    let floor = a[3] == "floor";
    let n: u64 = a[4].parse().unwrap();
    let s = setup(level, case);
    let mut dirty = 0;
    for _ in 0..n {
        if floor {
            black_box(one_floor(&s, &mut dirty));
        } else {
            assert_eq!(one_fault(&s, &mut dirty), expected(case));
        }
    }
    black_box(dirty);
}
