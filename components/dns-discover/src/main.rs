//! `dns-discover`: see `dns_discover::cli::HELP`.

use djinit_cli::{Args, Failure, Log};
use std::process::ExitCode;

fn main() -> ExitCode {
    djinit_cli::main("dns-discover", run)
}

fn run() -> anyhow::Result<()> {
    let env = |k: &str| std::env::var(k).ok();
    let opts = dns_discover::cli::Options::parse(Args::from_env(), &env)?;
    let log = Log::new("dns-discover", opts.common.verbosity);
    dns_discover::run::run(&opts, &env, &log)
        .map_err(|e| anyhow::Error::new(Failure::new(e.exit_code(), e.to_string())))
}
