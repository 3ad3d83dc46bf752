//! `--features linux-6-12` sets `cfg(kvm_rs_6_12)`, the cfg that
//! patches/6.12's Makefile change sets for the kernel build, so the host
//! tests compile rust/*.rs exactly as a 6.12 tree does.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_LINUX_6_12").is_some() {
        println!("cargo:rustc-cfg=kvm_rs_6_12");
    }
}
