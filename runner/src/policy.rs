//! What a component may use, and the WASI context that grants exactly that.
//!
//! Deny by default: a component gets stdin/stdout/stderr, clocks, random, its arguments, host name
//! lookup and nothing else. Environment variables, outbound TCP/UDP addresses and directories
//! are granted by name, by the command's policy (`crate::commands`) and by runner options.

use std::collections::BTreeMap;

use djinit_cli::Failure;
use djinit_wait::Kind;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

use crate::files::{self, FileMounts};
use crate::grants::{EnvGrant, Grants};
use crate::net::NetPolicy;
use crate::stdio;

/// The environment the component will see, as a lookup over `--env` values then the host's
/// environment. Commands compute their policy (e.g. the database address) through it, so
/// `--env DATABASE_URL=...` is honoured exactly like an exported variable.
pub struct EnvView<'a> {
    pub overrides: &'a [EnvGrant],
}

impl EnvView<'_> {
    pub fn get(&self, name: &str) -> Option<String> {
        match self.overrides.iter().rev().find(|g| g.name == name) {
            Some(EnvGrant { value: Some(v), .. }) => Some(v.clone()),
            _ => std::env::var(name).ok(),
        }
    }

    /// The variables the component gets: the granted names set in the host, then every `--env`.
    /// A variable to pass on that is set but not UTF-8 is a configuration error (78): WASI
    /// environment values are strings, and dropping it would make the command report it unset.
    pub fn select(&self, granted: &[String]) -> Result<BTreeMap<String, String>, Failure> {
        let host = |name: &str| match std::env::var(name) {
            Ok(v) => Ok(Some(v)),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(Failure::new(
                Kind::Config,
                format!(
                    "{name}: not valid UTF-8 (WASI passes environment variables as UTF-8 text)"
                ),
            )),
        };
        let overridden = |name: &str| {
            self.overrides
                .iter()
                .any(|g| g.name == name && g.value.is_some())
        };
        let mut out = BTreeMap::new();
        for name in granted.iter().filter(|n| !overridden(n)) {
            if let Some(v) = host(name)? {
                out.insert(name.clone(), v);
            }
        }
        for g in self.overrides {
            match &g.value {
                Some(v) => {
                    out.insert(g.name.clone(), v.clone());
                }
                None => {
                    if let Some(v) = host(&g.name)? {
                        out.insert(g.name.clone(), v);
                    }
                }
            }
        }
        Ok(out)
    }
}

/// The WASI context for one run: `argv`, the selected environment, the granted sockets,
/// directories and files, the runner's stdio (a closed stdout is not an error: [`crate::stdio`]).
/// The [`FileMounts`] must live as long as the context (they may hold private copies).
pub fn wasi_ctx(
    argv: &[String],
    env: &BTreeMap<String, String>,
    grants: &Grants,
) -> anyhow::Result<(WasiCtx, FileMounts)> {
    let mut b = WasiCtxBuilder::new();
    b.inherit_stdin()
        .stdout(stdio::Output::new(stdio::Which::Stdout))
        .stderr(stdio::Output::new(stdio::Which::Stderr))
        .args(argv);
    for (k, v) in env {
        b.env(k, v);
    }
    // Name lookup reveals nothing a connect could not; TCP/UDP only when something is granted,
    // and then only to the granted peers (checked per address in `NetPolicy`).
    b.allow_ip_name_lookup(true);
    b.allow_tcp(!grants.tcp.is_empty());
    b.allow_udp(!grants.udp.is_empty());
    let net = NetPolicy::new(grants.tcp.clone(), grants.udp.clone());
    b.socket_addr_check(move |addr, use_| {
        let net = net.clone();
        Box::pin(async move { net.allows(addr, use_).await })
    });
    let files = files::mount(&grants.files)?;
    for d in grants.dirs.iter().chain(&files.dirs) {
        let perms = if d.writable {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        b.preopened_dir(&d.host, &d.guest, perms).map_err(|e| {
            anyhow::Error::new(djinit_cli::Failure::new(
                Kind::NoInput,
                format!(
                    "cannot mount directory {}: {}",
                    d.host,
                    crate::describe::wasm_error(&e)
                ),
            ))
        })?;
    }
    Ok((b.build(), files))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_view_prefers_overrides_and_selects_only_granted() {
        let o = [EnvGrant::parse("DJINIT_TEST_X=1").unwrap()];
        let v = EnvView { overrides: &o };
        assert_eq!(v.get("DJINIT_TEST_X").as_deref(), Some("1"));
        let sel = v.select(&["PATH".to_string()]).unwrap();
        assert_eq!(sel.get("DJINIT_TEST_X").map(String::as_str), Some("1"));
        assert_eq!(sel.contains_key("PATH"), std::env::var("PATH").is_ok());
        assert_eq!(sel.len(), 1 + usize::from(std::env::var("PATH").is_ok()));
    }
}
