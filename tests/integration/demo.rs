//! `just demo` tells the truth: the tour checks every step against what it says (exit code and
//! key lines) and exits non-zero when one differs. Proved here by breaking one step on purpose
//! (`DJINIT_DEMO_BREAK`, which gives that step's command an argument it rejects): the tour must
//! report exactly that step, pass every other one, and exit 1. CI runs `just test`, not `just
//! demo`, so this also keeps every other step of the demo green.

use crate::harness::{run, workspace_root};
use std::process::Command;
use std::time::Duration;

#[test]
fn a_broken_step_fails_the_demo_and_every_other_step_passes() {
    const BROKEN: &str = "wait4db/wrong-password";
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_demo"));
    cmd.current_dir(workspace_root())
        .env("DJINIT_DEMO_BREAK", BROKEN);
    let out = run(cmd, Duration::from_secs(600));
    out.assert_code(1);
    let summary = out
        .stdout
        .split("\nSummary:")
        .nth(1)
        .unwrap_or_else(|| panic!("no summary\n{}", out.report()));
    let failed: Vec<&str> = summary
        .lines()
        .filter(|l| l.starts_with("  FAIL "))
        .collect();
    assert_eq!(failed.len(), 1, "{}", out.report());
    assert!(
        failed[0].starts_with(&format!("  FAIL {BROKEN} "))
            && failed[0].contains("exit 64: expected exit 77"),
        "{}",
        out.report()
    );
    let passed = summary.lines().filter(|l| l.starts_with("  ok ")).count();
    assert!(passed >= 20, "{}", out.report());
    assert!(
        summary.contains(&format!(
            "1 of {} steps did NOT do what the tour says.",
            passed + 1
        )),
        "{}",
        out.report()
    );
    // The step itself says that it was not as expected, right where it ran.
    assert!(
        out.stdout
            .contains("  ✗ expected exit 77, says \"password authentication failed\"; got exit 64"),
        "{}",
        out.report()
    );
}
