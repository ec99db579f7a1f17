//! The command: one-shot discovery (with `--min`/`--timeout` waiting) or `--watch`.

use crate::cli::Options;
use crate::client::DnsClient;
use crate::discover::{discover, Endpoints, Resolver, Target};
use crate::error::DiscoverError;
use crate::format::{join, render};
use crate::output;
use crate::resolv::{self, ResolvConf};
use djinit_cli::Log;
use djinit_wait::Deadline;
use djinit_wait::{retry, Event};
use std::time::{Duration, Instant};

/// A watch round is bounded by the interval, but never by less than this.
const MIN_ROUND: Duration = Duration::from_secs(1);

pub fn run(
    opts: &Options,
    env: &dyn Fn(&str) -> Option<String>,
    log: &Log,
) -> Result<(), DiscoverError> {
    let host = opts.host.as_deref().unwrap_or_default();
    let target = Target::parse(host, opts.port, opts.srv)?;
    let mut resolver = if opts.uses_dns_client() {
        Resolver::Dns(Box::new(DnsClient::new(resolv_conf(opts, env)?)))
    } else {
        Resolver::Host
    };
    let probe = opts.probe.then_some(opts.probe_timeout);
    let mut attempt = |deadline: Deadline| -> Result<Endpoints, DiscoverError> {
        let eps = discover(&mut resolver, &target, probe, deadline, log)?;
        if eps.len() < opts.min {
            return Err(DiscoverError::NotEnough {
                found: eps.len(),
                min: opts.min,
                detail: if eps.is_empty() {
                    String::new()
                } else {
                    format!(": {}", join(&eps, ", "))
                },
            });
        }
        Ok(eps)
    };
    let on_event = |e: Event<'_, DiscoverError>| log.retry_event(1, &e);

    // The first list: one attempt, or retried until --timeout (with --watch and no --timeout:
    // retried without limit).
    let first = if opts.timeout.is_zero() && !opts.watch {
        attempt(Deadline::never())?
    } else {
        let deadline = if opts.timeout.is_zero() {
            Deadline::never()
        } else {
            Deadline::after(opts.timeout)
        };
        retry(deadline, opts.interval, on_event, &mut attempt)?
    };
    emit(opts, &first)?;
    log.detail(format!(
        "{} endpoint(s): {}",
        first.len(),
        join(&first, ", ")
    ));
    if !opts.watch {
        return Ok(());
    }

    log.info(format!(
        "watching {host} every {}s: {} endpoint(s): {}",
        opts.interval.as_secs_f64(),
        first.len(),
        join(&first, ", ")
    ));
    let mut current = first;
    let mut failing = false;
    loop {
        let round = Instant::now();
        pause(opts.interval);
        let _ = round;
        let started = Instant::now();
        match attempt(Deadline::after(opts.interval.max(MIN_ROUND))) {
            Ok(eps) => {
                if failing {
                    log.info("lookups succeed again");
                    failing = false;
                }
                if eps != current {
                    let added: Endpoints = eps.difference(&current).copied().collect();
                    let removed: Endpoints = current.difference(&eps).copied().collect();
                    emit(opts, &eps)?;
                    log.info(change_line(&added, &removed, eps.len()));
                    current = eps;
                }
            }
            Err(e) if !e.is_retryable() => return Err(e),
            Err(e) => {
                if !failing {
                    log.info(format!(
                        "{e}; keeping the last good list ({} endpoint(s))",
                        current.len()
                    ));
                } else {
                    log.detail(format!("still failing: {e}"));
                }
                failing = true;
            }
        }
        log.debug(format!(
            "round took {:.1} ms",
            started.elapsed().as_secs_f64() * 1e3
        ));
    }
}

/// Sleep until the next round.
fn pause(d: Duration) {
    std::thread::sleep(d);
}

/// `added 10.0.0.3:11211; removed 10.0.0.1:11211 (now 2 endpoints)`.
pub fn change_line(added: &Endpoints, removed: &Endpoints, now: usize) -> String {
    let mut parts = Vec::new();
    if !added.is_empty() {
        parts.push(format!("added {}", join(added, ", ")));
    }
    if !removed.is_empty() {
        parts.push(format!("removed {}", join(removed, ", ")));
    }
    format!(
        "{} (now {now} endpoint{})",
        parts.join("; "),
        if now == 1 { "" } else { "s" }
    )
}

fn emit(opts: &Options, eps: &Endpoints) -> Result<(), DiscoverError> {
    let text = render(eps, opts.format, &opts.var);
    match &opts.output {
        Some(path) => output::write_atomic(path, &text),
        None => output::write_stdout(&text),
    }
}

/// The resolv.conf the runner handed over ($DJINIT_RESOLV_CONF), else /etc/resolv.conf if the
/// host maps one in, else defaults; `--nameserver` replaces its nameservers.
fn resolv_conf(
    opts: &Options,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ResolvConf, DiscoverError> {
    let text = match env(resolv::ENV_VAR) {
        Some(t) => t,
        None => std::fs::read_to_string(resolv::DEFAULT_PATH).unwrap_or_default(),
    };
    let mut conf = ResolvConf::parse(&text);
    if !opts.nameservers.is_empty() {
        conf.nameservers = opts.nameservers.clone();
    }
    if conf.nameservers.is_empty() {
        return Err(DiscoverError::Config(format!(
            "no nameserver: pass --nameserver IP[:PORT], or run through `djinit dns-discover`, \
             which hands the component the host's resolv.conf (${})",
            resolv::ENV_VAR
        )));
    }
    Ok(conf)
}

impl DiscoverError {
    /// Whether a watch round that failed like this should keep the last list and go on.
    fn is_retryable(&self) -> bool {
        use djinit_wait::Classify;
        // A malformed reply is not retried in one-shot mode, but a watcher rides it out.
        self.is_transient() || matches!(self, DiscoverError::Malformed { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_lines() {
        let a: Endpoints = ["10.0.0.3:11211".parse().unwrap()].into();
        let r: Endpoints = ["10.0.0.1:11211".parse().unwrap()].into();
        assert_eq!(
            change_line(&a, &r, 2),
            "added 10.0.0.3:11211; removed 10.0.0.1:11211 (now 2 endpoints)"
        );
        assert_eq!(
            change_line(&Endpoints::new(), &r, 1),
            "removed 10.0.0.1:11211 (now 1 endpoint)"
        );
    }
}
