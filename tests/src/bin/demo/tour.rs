//! The guided tour's plumbing: every step runs a real command, prints it the way a user would type
//! it with what it said, and is checked against what the tour promises (an exit code and the key
//! lines of its output). The tour ends with a summary, expected vs actual per step, and exits
//! non-zero if any step differed: a demo that shows a failure while calling it a success is a
//! lie, so the tour cannot do that.
//!
//! `DJINIT_DEMO_BREAK=<step id>` breaks one step on purpose (its command gets an argument it
//! rejects), so a test can prove that the checking works (`tests/integration/demo.rs`).

use djinit_tests::{redact, run, spawn, Cluster, Output, Running};
use std::process::Command;
use std::time::Duration;

/// The argument `DJINIT_DEMO_BREAK` adds to the chosen step's command: every djinit command
/// rejects an unknown flag (exit 64), and so does `manage.py`.
pub const BREAKING_ARG: &str = "--djinit-demo-broken";

/// What a step promises: its exit code and lines (substrings) that its stdout or stderr shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expect {
    pub code: i32,
    pub says: &'static [&'static str],
}

/// `Expect { code, says }`.
pub const fn expect(code: i32, says: &'static [&'static str]) -> Expect {
    Expect { code, says }
}

/// How a step turned out against its [`Expect`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// `exit 0`, `killed by signal 9 at the timeout`, ...
    pub actual: String,
    /// What differs (empty: as expected).
    pub problems: Vec<String>,
}

impl Verdict {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks `out` against `expect`: the exit code (a kill by signal or at the timeout never
/// matches) and each promised line, in stdout or stderr.
pub fn check(expect: &Expect, out: &Output) -> Verdict {
    let mut problems = Vec::new();
    if out.timed_out {
        problems.push("killed at the time limit".to_string());
    } else if out.code != Some(expect.code) {
        problems.push(match out.code {
            Some(c) => format!("exit code {c}, expected {}", expect.code),
            None => format!("{}, expected exit {}", out.status_text(), expect.code),
        });
    }
    for line in expect.says {
        if !out.stdout.contains(line) && !out.stderr.contains(line) {
            problems.push(format!("does not say {line:?}"));
        }
    }
    Verdict {
        actual: out.status_text(),
        problems,
    }
}

/// `cmd` with its stderr sent to its stdout, so the tour shows the lines in the order they were
/// written (progress on stderr, results on stdout). `cmd` must have been built with `env_clear`
/// (as every command of the tour is): its explicit variables, arguments and directory are kept.
fn merged(cmd: Command) -> Command {
    let mut sh = Command::new("sh");
    sh.env_clear()
        .args(["-c", "exec \"$0\" \"$@\" 2>&1"])
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        sh.current_dir(dir);
    }
    sh
}

/// One checked step, for the summary.
#[derive(Debug, Clone)]
pub struct Record {
    pub id: &'static str,
    pub expected: String,
    pub verdict: Verdict,
}

/// `exit 0, says "is ready"`.
pub fn describe_expect(e: &Expect) -> String {
    let mut s = format!("exit {}", e.code);
    for l in e.says {
        s.push_str(&format!(", says {l:?}"));
    }
    s
}

/// The summary lines and whether every step was as expected.
pub fn summary(records: &[Record]) -> (String, bool) {
    let failed = records.iter().filter(|r| !r.verdict.ok()).count();
    let width = records.iter().map(|r| r.id.len()).max().unwrap_or(0);
    let mut s = String::new();
    for r in records {
        if r.verdict.ok() {
            s.push_str(&format!("  ok   {:width$}  {}\n", r.id, r.verdict.actual));
        } else {
            s.push_str(&format!(
                "  FAIL {:width$}  {}: expected {}; {}\n",
                r.id,
                r.verdict.actual,
                r.expected,
                r.verdict.problems.join("; ")
            ));
        }
    }
    if failed == 0 {
        s.push_str(&format!(
            "All {} steps did what the tour says.\n",
            records.len()
        ));
    } else {
        s.push_str(&format!(
            "{failed} of {} steps did NOT do what the tour says.\n",
            records.len()
        ));
    }
    (s, failed == 0)
}

/// What every story gets: the cluster (scram-sha-256, superuser `postgres`) and the record of
/// checked steps.
pub struct Tour {
    pub pg: Cluster,
    records: Vec<Record>,
    /// The step id named by `DJINIT_DEMO_BREAK`, if any.
    broken: Option<String>,
    /// Whether that step ran (broken).
    break_applied: bool,
}

impl Tour {
    pub fn new(pg: Cluster, broken: Option<String>) -> Tour {
        Tour {
            pg,
            records: Vec::new(),
            broken,
            break_applied: false,
        }
    }

    /// False if `DJINIT_DEMO_BREAK` named a step but no command step of that id ran.
    pub fn break_applied(&self) -> bool {
        self.broken.is_none() || self.break_applied
    }

    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// A `djinit` command: `env` set (and shown, passwords masked), `args` given.
    /// Adds [`BREAKING_ARG`] when `id` is the step to break.
    pub fn djinit(&mut self, id: &str, env: &[(&str, String)], args: &[&str]) -> (String, Command) {
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
        self.breaking(id, &mut line, &mut cmd);
        (redact(&line), cmd)
    }

    /// Adds [`BREAKING_ARG`] to `cmd` (and `line`) if `id` is the step to break.
    pub fn breaking(&mut self, id: &str, line: &mut String, cmd: &mut Command) {
        if self.broken.as_deref() == Some(id) {
            self.break_applied = true;
            cmd.arg(BREAKING_ARG);
            line.push(' ');
            line.push_str(BREAKING_ARG);
            println!("  (DJINIT_DEMO_BREAK={id}: this step is broken on purpose)");
        }
    }

    /// Runs a `djinit` command as step `id` (see [`Tour::djinit`]), prints it and what it said,
    /// and checks it.
    pub fn show(
        &mut self,
        id: &'static str,
        env: &[(&str, String)],
        args: &[&str],
        expect: Expect,
        limit: Duration,
    ) -> Output {
        let (line, cmd) = self.djinit(id, env, args);
        self.show_command(id, &line, cmd, expect, limit)
    }

    /// Like [`Tour::show`] for any command; `line` is what gets printed. The caller applies
    /// [`Tour::breaking`] if the step can be broken.
    pub fn show_command(
        &mut self,
        id: &'static str,
        line: &str,
        cmd: Command,
        expect: Expect,
        limit: Duration,
    ) -> Output {
        println!("  {line}");
        let out = run(merged(cmd), limit);
        self.report(id, expect, out)
    }

    /// Starts a command in the background (printing its line); finish it with [`Tour::report`].
    pub fn start(&self, line: &str, cmd: Command) -> Running {
        println!("  {line} &");
        spawn(merged(cmd))
    }

    /// Prints what a finished command said and how it exited, checks it against `expect` and
    /// records the verdict under `id`.
    pub fn report(&mut self, id: &'static str, expect: Expect, out: Output) -> Output {
        for l in out.stdout.lines().chain(out.stderr.lines()) {
            println!("    {}", redact(l));
        }
        let name = out
            .code
            .and_then(djinit_cli::ExitCode::from_code)
            .map(|c| format!(" ({})", c.name()))
            .unwrap_or_default();
        println!(
            "  → {}{name} in {:.0} ms",
            out.status_text(),
            out.elapsed.as_secs_f64() * 1000.0
        );
        let verdict = check(&expect, &out);
        self.record(id, describe_expect(&expect), verdict);
        out
    }

    /// Checks a fact the tour states that is not a command's exit (e.g. what a table holds).
    pub fn verify(&mut self, id: &'static str, what: &str, expected: &str, actual: &str) {
        if actual.trim_end().contains('\n') {
            println!("  {what}:");
            for l in actual.lines() {
                println!("    {l}");
            }
        } else {
            println!("  {what}: {}", actual.trim_end());
        }
        let problems = if actual == expected {
            Vec::new()
        } else {
            vec![format!("expected {expected:?}")]
        };
        let verdict = Verdict {
            actual: format!("{actual:?}"),
            problems,
        };
        self.record(id, format!("{expected:?}"), verdict);
    }

    fn record(&mut self, id: &'static str, expected: String, verdict: Verdict) {
        if verdict.ok() {
            println!("  ✓ expected {expected}; got {}\n", verdict.actual);
        } else {
            println!(
                "  ✗ expected {expected}; got {}: {}\n",
                verdict.actual,
                verdict.problems.join("; ")
            );
        }
        self.records.push(Record {
            id,
            expected,
            verdict,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(code: Option<i32>, stdout: &str, stderr: &str) -> Output {
        Output {
            command: "djinit wait4db".into(),
            code,
            signal: if code.is_none() { Some(9) } else { None },
            stdout: stdout.into(),
            stderr: stderr.into(),
            elapsed: Duration::from_millis(5),
            timed_out: false,
            max_rss_kib: 0,
        }
    }

    const READY: Expect = expect(0, &["is ready"]);

    #[test]
    fn the_expected_code_and_line_pass() {
        let v = check(
            &READY,
            &output(Some(0), "", "wait4db: database x is ready (1 probe)"),
        );
        assert!(v.ok(), "{v:?}");
        assert_eq!(v.actual, "exit 0");
        // stdout counts as well as stderr.
        assert!(check(&READY, &output(Some(0), "x is ready", "")).ok());
    }

    #[test]
    fn another_exit_code_fails() {
        let v = check(&READY, &output(Some(65), "", "x is ready"));
        assert!(!v.ok());
        assert_eq!(v.problems, ["exit code 65, expected 0"]);
        // The bug this checker exists for: a step that fails while the tour calls it a success.
        let migrate = expect(0, &["No migrations to apply."]);
        let v = check(
            &migrate,
            &output(
                Some(65),
                "",
                "lockedmigrate: error: applying auth.0001_initial failed (SQLSTATE 42P07)",
            ),
        );
        assert_eq!(
            v.problems,
            [
                "exit code 65, expected 0",
                "does not say \"No migrations to apply.\""
            ]
        );
    }

    #[test]
    fn a_missing_key_line_fails_even_with_the_right_code() {
        let v = check(
            &expect(0, &["is ready", "attempt 1"]),
            &output(Some(0), "", "x is ready"),
        );
        assert_eq!(v.problems, ["does not say \"attempt 1\""]);
    }

    #[test]
    fn a_signal_or_a_timeout_never_matches() {
        let v = check(&expect(143, &[]), &output(None, "", ""));
        assert_eq!(v.problems, ["killed by signal 9, expected exit 143"]);
        let mut hung = output(None, "", "");
        hung.timed_out = true;
        assert_eq!(
            check(&READY, &hung).problems,
            ["killed at the time limit", "does not say \"is ready\""]
        );
    }

    #[test]
    fn the_summary_fails_when_one_step_failed() {
        let rec = |id, code| Record {
            id,
            expected: describe_expect(&READY),
            verdict: check(&READY, &output(Some(code), "is ready", "")),
        };
        let (text, ok) = summary(&[rec("a", 0), rec("b", 0)]);
        assert!(ok);
        assert!(
            text.contains("All 2 steps did what the tour says."),
            "{text}"
        );
        let (text, ok) = summary(&[rec("a", 0), rec("bb", 77)]);
        assert!(!ok);
        assert!(
            text.contains(
                "  FAIL bb  exit 77: expected exit 0, says \"is ready\"; exit code 77, expected 0"
            ),
            "{text}"
        );
        assert!(text.contains("  ok   a   exit 0\n"), "{text}");
        assert!(text.contains("1 of 2 steps did NOT"), "{text}");
    }
}
