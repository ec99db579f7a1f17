//! The guided tour's plumbing: one throwaway cluster, and `show()`, which prints a command line
//! the way a user would type it, runs it, and prints what it said and how it exited.

use djinit_tests::{redact, run, Cluster, Output};
use std::process::Command;
use std::time::Duration;

/// One step of the tour: a heading and what to do.
pub struct Step {
    pub title: &'static str,
    /// One or two sentences shown before the commands: what to look for.
    pub about: &'static str,
    pub run: fn(&mut Tour),
}

/// What every step gets: the cluster (scram-sha-256, superuser `postgres`).
pub struct Tour {
    pub pg: Cluster,
}

impl Tour {
    /// Prints `$ VAR=... djinit <args>` (harness passwords shown as `<PASSWORD>`, `*PASSWORD*`
    /// variables as `***`), runs it (killed after
    /// `limit`), prints its stdout/stderr indented and then its exit code with the code's name.
    pub fn show(&self, env: &[(&str, String)], args: &[&str], limit: Duration) -> Output {
        let mut cmd = djinit_tests::djinit();
        cmd.args(args);
        let mut line = String::from("$ ");
        for (k, v) in env {
            cmd.env(k, v);
            // Any *PASSWORD* variable is shown masked; URLs are redacted below.
            let shown = if k.contains("PASSWORD") {
                "***"
            } else {
                v.as_str()
            };
            line.push_str(&format!("{k}={shown} "));
        }
        line.push_str("djinit");
        for a in args {
            line.push(' ');
            line.push_str(a);
        }
        self.show_command(&redact(&line), cmd, limit)
    }

    /// Like [`Tour::show`] for any command; `line` is what gets printed.
    pub fn show_command(&self, line: &str, cmd: Command, limit: Duration) -> Output {
        println!("  {line}");
        let out = run(cmd, limit);
        for l in out.stdout.lines().chain(out.stderr.lines()) {
            println!("    {}", redact(l));
        }
        let name = out
            .code
            .and_then(djinit_cli::ExitCode::from_code)
            .map(|c| format!(" ({})", c.name()))
            .unwrap_or_default();
        println!(
            "  → {}{name} in {:.0} ms\n",
            out.status_text(),
            out.elapsed.as_secs_f64() * 1000.0
        );
        out
    }
}
