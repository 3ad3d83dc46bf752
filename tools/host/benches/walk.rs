//! Walk + decision + compare-exchange per fault, on 4- and 5-level tables,
//! next to a floor of the same number of dependent loads plus one
//! compare-exchange. `cargo bench --bench walk`.

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use std::time::Duration;

#[path = "workload.rs"]
mod workload;
use workload::*;

fn bench(c: &mut Criterion) {
    for level in [4u32, 5] {
        let mut g = c.benchmark_group(format!("{level}-level"));
        for case in CASES {
            let s = setup(level, case);
            let mut dirty = 0u64;
            assert_eq!(one_fault(&s, &mut dirty), expected(case));
            g.bench_function(format!("{case:?}/fast_page_fault"), |b| {
                b.iter(|| black_box(one_fault(&s, &mut dirty)))
            });
            g.bench_function(format!("{case:?}/floor"), |b| {
                b.iter(|| black_box(one_floor(&s, &mut dirty)))
            });
            black_box(dirty);
        }
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50);
    targets = bench
}
criterion_main!(benches);
