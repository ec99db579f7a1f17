//! `dns-discover`: see `dns_discover::cli::HELP`.

use djinit_cli::CommandLine;
use djinit_cli::{Args, Log};
use std::process::ExitCode;

fn main() -> ExitCode {
    djinit_cli::main("dns-discover", dns_discover::classify, run)
}

fn run() -> anyhow::Result<()> {
    let env = |k: &str| std::env::var(k).ok();
    let Some(opts) = dns_discover::cli::Options::parse(Args::from_env(), &env)?.or_print() else {
        return Ok(());
    };
    let log = Log::new("dns-discover", opts.common.verbosity);
    Ok(dns_discover::run::run(&opts, &env, &log)?)
}
