//! From the runner's parsed command line to one run: an embedded command (the command table's
//! plan plus the runner options, then [`exec::run`] or the entry's native hook) or a component
//! file (the runner options only).

use std::path::{Path, PathBuf};

use djinit_cli::log::format as log_format;
use djinit_cli::{Failure, UsageError};
use djinit_wait::Kind;

use crate::cli::Options;
use crate::commands::{self, Plan};
use crate::embedded;
use crate::exec::{self, Run, Source};
use crate::grants::Grants;
use crate::policy::EnvView;

/// `djinit [OPTIONS] NAME ARGS...`: the embedded command `name`.
pub fn command(options: &Options, name: String, args: Vec<String>) -> anyhow::Result<u8> {
    let Some(bytes) = embedded::get(&name) else {
        if embedded::is_empty() {
            return Err(Failure::new(
                Kind::Internal,
                "this djinit build has no embedded components (built without target/precompiled/*.cwasm): run `just build`",
            )
            .into());
        }
        let names: Vec<&str> = embedded::names().collect();
        let hint = crate::cli::suggest(&name, names.iter().copied())
            .map(|n| format!("did you mean {n:?}? "))
            .unwrap_or_default();
        return Err(UsageError(format!(
            "unknown command {name:?} ({hint}commands: {}; see --help)",
            names.join(", ")
        ))
        .into());
    };
    let view = EnvView {
        overrides: &options.env,
    };
    // A command without an entry in the table gets only what the options grant.
    let entry = commands::find(&name);
    let mut plan = entry.map_or_else(Plan::default, |c| c.plan(&args, &view));
    // Every embedded command writes its lines in the runner's format.
    plan.grants.env.push(log_format::ENV_VAR.into());
    let mut run = Run::new(options, name, Source::Embedded(bytes), args, plan.grants)?;
    if let Some(format) = options.log_format {
        run.env
            .insert(log_format::ENV_VAR.into(), format.name().into());
    }
    match (entry.and_then(|c| c.native), plan.host_command) {
        (Some(native), Some(cmd)) => native(run, cmd),
        _ => exec::run(run),
    }
}

/// `djinit [OPTIONS] run [OPTIONS] FILE ARGS...`: a component file, granted what the options say.
pub fn file(options: &Options, path: PathBuf, args: Vec<String>) -> anyhow::Result<u8> {
    let label = file_label(&path);
    let run = Run::new(options, label, Source::File(path), args, Grants::default())?;
    exec::run(run)
}

/// `argv[0]` and the name in messages for `run FILE`: the file name without extension.
fn file_label(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("component")
        .to_string()
}
