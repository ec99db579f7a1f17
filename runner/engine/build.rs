//! Records the target triple this crate is built for, so the engine compiles for exactly the
//! triple the runner runs on (and sets it explicitly, which turns off host CPU feature inference).
fn main() {
    let target = std::env::var("TARGET").expect("cargo sets TARGET for build scripts");
    println!("cargo:rustc-env=DJINIT_ENGINE_TARGET={target}");
    println!("cargo:rerun-if-changed=build.rs");
}
