//! Sizes of what ships: the runner binary and each component.

use crate::stats::size;
use crate::Bench;
use djinit_tests::paths::djinit_path;
use djinit_tests::target_dir;

pub fn run(b: &mut Bench) -> Result<(), String> {
    println!("== sizes");
    let runner = djinit_path();
    let len = std::fs::metadata(&runner)
        .map_err(|e| format!("{}: {e} (run `just build`)", runner.display()))?
        .len();
    let shown = runner.strip_prefix(target_dir()).unwrap_or(&runner);
    println!(
        "  {:<48} {:>10}",
        format!("target/{}", shown.display()),
        size(len)
    );

    let mut wasm: Vec<_> = std::fs::read_dir(target_dir().join("components"))
        .map_err(|e| format!("target/components: {e} (run `just build`)"))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
        .collect();
    wasm.sort();
    if wasm.is_empty() {
        return Err("no target/components/*.wasm (run `just build`)".into());
    }
    for p in &wasm {
        let len = std::fs::metadata(p)
            .map_err(|e| format!("{}: {e}", p.display()))?
            .len();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let cwasm = target_dir()
            .join("precompiled")
            .join(name.replace(".wasm", ".cwasm"));
        let pre = std::fs::metadata(&cwasm)
            .map(|m| format!("   (precompiled {})", size(m.len())))
            .unwrap_or_default();
        println!(
            "  {:<48} {:>10}{pre}",
            format!("target/components/{name}"),
            size(len)
        );
        // Issue targets: < 1 MiB per component, < 1.5 MiB for those carrying TLS (every
        // PostgreSQL command; rustls + ring add ~0.7 MiB). dns-discover has no TLS.
        let (limit, label) = if name.starts_with("dns-discover") {
            (1024 * 1024, "1 MiB")
        } else {
            (1024 * 1024 * 3 / 2, "1.5 MiB (with TLS)")
        };
        b.report
            .target(format!("{name} < {label}"), len < limit, size(len));
    }
    println!();
    Ok(())
}
