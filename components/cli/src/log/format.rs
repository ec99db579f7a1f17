//! How a line reaches stderr: `text` (`prog: message`, the default) or `json` (one object per line
//! for log collectors), chosen by `--log-format` or `DJINIT_LOG_FORMAT`.
//!
//! A JSON line holds `time` (RFC 3339, UTC, milliseconds), `level` (`error`, `warn`, `info`,
//! `debug`, `trace`), `command`, `message`, then the event's own fields (`attempt`, `elapsed_s`,
//! `exit_code`, `holder`, …). Security posture: the same as for text lines, since the message is
//! the text line's message (connection settings only through `Config::describe()`, server text
//! redacted and with control characters escaped) and fields carry counts, durations, codes and
//! names, never a credential.
//!
//! The format is process-wide (one command per process): set once from the flag or the
//! environment, read by every line, the final error line of [`crate::main`] included.

use std::sync::atomic::{AtomicU8, Ordering};

use serde_json::Value;

/// The environment variable read when `--log-format` is not given: `text` or `json`.
pub const ENV_VAR: &str = "DJINIT_LOG_FORMAT";

/// Output format of progress and error lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `prog: message`, for people.
    Text = 0,
    /// One JSON object per line, for log collectors.
    Json = 1,
}

impl Format {
    /// The name `parse` takes.
    pub fn name(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Json => "json",
        }
    }

    /// `text` or `json` (case-insensitive); anything else is a usage error naming the choices.
    pub fn parse(v: &str) -> Result<Format, String> {
        match v.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            _ => Err(format!("expects text or json, got {v:?}")),
        }
    }
}

static FORMAT: AtomicU8 = AtomicU8::new(Format::Text as u8);

/// Use `format` for every line from now on.
pub fn set(format: Format) {
    FORMAT.store(format as u8, Ordering::Relaxed);
}

/// The format in use.
pub fn current() -> Format {
    if FORMAT.load(Ordering::Relaxed) == Format::Json as u8 {
        Format::Json
    } else {
        Format::Text
    }
}

/// Set the format from `DJINIT_LOG_FORMAT` (unset or empty: text). An invalid value is an error
/// the caller reports as a usage error (exit 64), in text.
pub fn init_from_env() -> Result<(), String> {
    match std::env::var(ENV_VAR) {
        Ok(v) if !v.trim().is_empty() => {
            set(Format::parse(&v).map_err(|m| format!("{ENV_VAR}: {m}"))?);
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Severity of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Error,
    Warn,
    /// Normal progress (verbosity 1).
    Info,
    /// Verbose detail (verbosity 2).
    Debug,
    /// Very verbose (verbosity 3).
    Trace,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
            Level::Trace => "trace",
        }
    }
}

/// A field of an event, by name.
pub type Field<'a> = (&'a str, Value);

/// Write one line for `prog` on stderr in the current format. In text, `prefix` goes before the
/// message (`error: `) and fields are not shown (the message already says what they hold).
pub fn emit(prog: &str, level: Level, prefix: &str, msg: &str, fields: &[Field<'_>]) {
    let line = render(current(), prog, level, prefix, msg, fields);
    eprintln!("{line}");
}

/// The line [`emit`] writes, without the newline.
pub fn render(
    format: Format,
    prog: &str,
    level: Level,
    prefix: &str,
    msg: &str,
    fields: &[Field<'_>],
) -> String {
    let msg = crate::one_line(msg);
    match format {
        Format::Text => format!("{prog}: {prefix}{msg}"),
        Format::Json => {
            // The four fixed keys first, in this order, for people reading raw lines; then the
            // event's fields (serde_json's map would sort them all alphabetically).
            let time = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
            let mut line = String::with_capacity(96 + msg.len());
            for (i, (key, value)) in [
                ("time", time.as_str()),
                ("level", level.as_str()),
                ("command", prog),
                ("message", msg.as_str()),
            ]
            .into_iter()
            .enumerate()
            {
                line.push(if i == 0 { '{' } else { ',' });
                push_pair(&mut line, key, &Value::from(value));
            }
            for (name, value) in fields {
                // Fields never repeat the four above.
                if !["time", "level", "command", "message"].contains(name) {
                    line.push(',');
                    push_pair(&mut line, name, value);
                }
            }
            line.push('}');
            line
        }
    }
}

fn push_pair(line: &mut String, key: &str, value: &Value) {
    line.push_str(&Value::from(key).to_string());
    line.push(':');
    line.push_str(&value.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_the_classic_line() {
        let l = render(
            Format::Text,
            "wait4db",
            Level::Error,
            "error: ",
            "boom\nline 2",
            &[("exit_code", 69.into())],
        );
        assert_eq!(l, "wait4db: error: boom line 2");
    }

    #[test]
    fn json_is_one_object_with_fields_and_no_raw_controls() {
        let l = render(
            Format::Json,
            "lockedmigrate",
            Level::Info,
            "",
            "waiting \x1b[2J for the lock",
            &[
                ("attempt", 3.into()),
                ("holder", "pid 42".into()),
                ("level", "spoofed".into()),
            ],
        );
        assert!(!l.contains('\n') && !l.contains('\x1b'), "{l}");
        let v: Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["level"], "info");
        assert_eq!(v["command"], "lockedmigrate");
        assert_eq!(v["message"], "waiting \\x1b[2J for the lock");
        assert_eq!(v["attempt"], 3);
        assert_eq!(v["holder"], "pid 42");
        assert!(l.starts_with("{\"time\":"), "{l}");
        assert!(l.find("\"message\"") < l.find("\"attempt\""), "{l}");
        let time = v["time"].as_str().unwrap();
        assert!(humantime::parse_rfc3339(time).is_ok(), "{time}");
    }

    #[test]
    fn format_names() {
        assert_eq!(Format::parse("JSON"), Ok(Format::Json));
        assert_eq!(Format::parse("text"), Ok(Format::Text));
        assert!(Format::parse("yaml").unwrap_err().contains("text or json"));
    }
}
