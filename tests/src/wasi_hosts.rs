//! Other WASI hosts for the plain components (`target/components/*.wasm`): the wasmtime CLI and
//! Node.js with jco, driven by the README's own recipes (section "Other WASI hosts"), so what the
//! README tells a user to type is exactly what the tests run.
//!
//! - [`recipes`]: the command lines of a host's last `sh` block (backslash continuations joined).
//! - [`Host::command`]: a recipe as a `bash -c` command, with paths substituted (`/migrations` →
//!   a temporary bundle, ...), the variables given and the host's program on `PATH`.
//! - [`jco_dir`]: jco installed by running the README's install block verbatim into
//!   `target/jco/<hash of that block>`, once; the block is where the versions are pinned, so
//!   changing them there installs afresh. Needs `node` and `npm` (`.ci/setup --tests` installs
//!   them): without them it panics with the reason, it never skips.

use crate::paths::{target_dir, workspace_root};
use crate::process::run;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

/// A WASI host the README gives recipes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    /// `wasmtime run` (CLI 48.0.8, `.ci/setup --tests` installs it).
    WasmtimeCli,
    /// `jco run` on Node.js.
    Jco,
}

impl Host {
    /// The README subsection holding the host's recipes.
    pub fn heading(self) -> &'static str {
        match self {
            Host::WasmtimeCli => "### wasmtime CLI 48",
            Host::Jco => "### Node.js with jco",
        }
    }

    /// `bash -c <recipe>` in the workspace root: environment empty but `env`, `PATH` (with the
    /// host's program first) and, for jco, `JCO_DIR`; each `(from, to)` of `substitutions`
    /// replaced in the recipe text (e.g. `("/migrations", "/tmp/bundle-x")`).
    pub fn command(
        self,
        recipe: &Recipe,
        substitutions: &[(&str, &Path)],
        env: &[(&str, String)],
    ) -> Command {
        let mut text = recipe.text.clone();
        for (from, to) in substitutions {
            text = text.replace(from, &to.display().to_string());
        }
        // The recipes name `target/components/`; the harness may use another target dir.
        let components = target_dir().join("components");
        text = text.replace("target/components/", &format!("{}/", components.display()));
        let mut path = vec![match self {
            Host::WasmtimeCli => wasmtime_cli()
                .parent()
                .expect("wasmtime has a directory")
                .to_path_buf(),
            Host::Jco => jco_dir().join("node_modules/.bin"),
        }];
        path.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        let mut cmd = Command::new("bash");
        cmd.current_dir(workspace_root())
            .env_clear()
            .env("PATH", std::env::join_paths(path).expect("PATH"))
            .args(["-euo", "pipefail", "-c", &text]);
        if self == Host::Jco {
            cmd.env("JCO_DIR", jco_dir());
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }
}

/// One command line of a README recipe block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    pub text: String,
}

impl Recipe {
    /// The component it runs: `<name>` of `target/components/<name>.wasm`.
    pub fn component(&self) -> Option<&str> {
        let rest = &self.text[self.text.find("target/components/")? + 18..];
        Some(&rest[..rest.find(".wasm")?])
    }
}

fn readme() -> String {
    let path = workspace_root().join("README.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `sh` code blocks of the README subsection `heading` (up to the next heading).
pub fn sh_blocks(heading: &str) -> Vec<String> {
    let text = readme();
    let mut lines = text.lines().skip_while(|l| l.trim_end() != heading);
    if lines.next().is_none() {
        panic!("README.md has no section {heading:?}");
    }
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in lines {
        match &mut current {
            None if line.starts_with("## ") || line.starts_with("### ") => break,
            None if line.trim_end() == "```sh" => current = Some(String::new()),
            None => {}
            Some(_) if line.trim_end() == "```" => blocks.push(current.take().unwrap()),
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
        }
    }
    blocks
}

/// The command lines of `block`, backslash continuations joined.
pub fn command_lines(block: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in block.lines() {
        match line.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                let joined = current.split_whitespace().collect::<Vec<_>>().join(" ");
                if !joined.is_empty() {
                    out.push(joined);
                }
                current.clear();
            }
        }
    }
    out
}

/// The recipes of `host`: the command lines of the last `sh` block of its README subsection.
pub fn recipes(host: Host) -> Vec<Recipe> {
    let blocks = sh_blocks(host.heading());
    let last = blocks
        .last()
        .unwrap_or_else(|| panic!("README section {:?} has no sh block", host.heading()));
    command_lines(last)
        .into_iter()
        .map(|text| Recipe { text })
        .collect()
}

/// The wasmtime CLI (`wasmtime` on `PATH`, else `~/.cargo/bin/wasmtime`).
pub fn wasmtime_cli() -> PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("wasmtime"))
            .find(|p| p.is_file())
    });
    let home = std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo/bin/wasmtime"));
    on_path.or(home.filter(|p| p.is_file())).expect(
        "the wasmtime CLI is not installed: `bash .ci/setup --tests` installs it (`just test` runs it)",
    )
}

/// 64-bit FNV-1a: a cache key that stays the same across Rust versions.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Panics with the reason unless `program --version` runs.
fn require(program: &str) {
    match Command::new(program).arg("--version").output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "`{program} --version` failed ({}): the jco tests need Node.js and npm \
             (`bash .ci/setup --tests` installs them)",
            o.status
        ),
        Err(e) => panic!(
            "`{program}` cannot be run ({e}): the jco tests need Node.js and npm \
             (`bash .ci/setup --tests` installs them)"
        ),
    }
}

/// The directory jco is installed in (`$JCO_DIR` of the README): `target/jco/<key>`, where the
/// key is a hash of the README's install block. Installs on first use by running that block
/// with bash (npm, about half a minute), into a temporary directory renamed when complete, so a
/// killed install is never taken for a finished one.
pub fn jco_dir() -> PathBuf {
    static INSTALL: Mutex<()> = Mutex::new(());
    let _one_at_a_time = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let blocks = sh_blocks(Host::Jco.heading());
    let install = match blocks.as_slice() {
        [install, _recipes] => install,
        _ => panic!(
            "README section {:?}: expected two sh blocks (install, recipes), found {}",
            Host::Jco.heading(),
            blocks.len()
        ),
    };
    let base = target_dir().join("jco");
    let dir = base.join(format!("{:016x}", fnv1a(install)));
    if dir.join("node_modules/.bin/jco").is_file() && dir.join("preopens.mjs").is_file() {
        return dir;
    }
    require("node");
    require("npm");
    let tmp = base.join(format!(
        "{:016x}.part-{}",
        fnv1a(install),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).expect("target/jco");
    // The user's environment (npm needs HOME for its cache), plus JCO_DIR.
    let mut cmd = Command::new("bash");
    cmd.current_dir(workspace_root())
        .env("JCO_DIR", &tmp)
        .args(["-euo", "pipefail", "-c", install]);
    let out = run(cmd, Duration::from_secs(900));
    if out.code != Some(0) {
        panic!(
            "installing jco with the README's install block failed\n{}",
            out.report()
        );
    }
    if std::fs::rename(&tmp, &dir).is_err() {
        // Another test process finished first: use its install.
        let _ = std::fs::remove_dir_all(&tmp);
    }
    assert!(
        dir.join("node_modules/.bin/jco").is_file(),
        "jco is not in {} after the install",
        dir.display()
    );
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuations_are_joined_and_components_found() {
        let lines = command_lines(
            "jco run target/components/wait4db.wasm -t 60\n\
             WASI_PREOPENS=/m jco run \\\n  target/components/checkmigrations.wasm --bundle /m\n\n",
        );
        assert_eq!(
            lines,
            [
                "jco run target/components/wait4db.wasm -t 60",
                "WASI_PREOPENS=/m jco run target/components/checkmigrations.wasm --bundle /m"
            ]
        );
        let r = Recipe {
            text: lines[1].clone(),
        };
        assert_eq!(r.component(), Some("checkmigrations"));
        assert_eq!(Recipe { text: "ls".into() }.component(), None);
    }

    #[test]
    fn the_readme_has_recipes_for_every_host() {
        for host in [Host::WasmtimeCli, Host::Jco] {
            let r = recipes(host);
            assert!(!r.is_empty(), "{host:?}");
            assert!(r.iter().all(|r| r.component().is_some()), "{host:?}: {r:?}");
        }
    }
}
