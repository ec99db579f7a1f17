//! Output formats. Every format lists the same sorted, de-duplicated endpoints as `ip:port`,
//! IPv6 bracketed (`[fd00::1]:11211`), and ends with a newline:
//!
//! - `lines` (default): one endpoint per line; nothing at all when there are none.
//! - `csv`: one line, comma-separated.
//! - `json`: an array of strings, `["10.0.0.1:11211","[fd00::1]:11211"]`.
//! - `env`: `NAME=ip:port,ip:port` (`--var NAME`, default `MEMCACHED_SERVERS`), for `source` or
//!   an env file.

use crate::discover::Endpoints;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Lines,
    Csv,
    Json,
    Env,
}

pub const DEFAULT_VAR: &str = "MEMCACHED_SERVERS";

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        Some(match s {
            "lines" => Format::Lines,
            "csv" => Format::Csv,
            "json" => Format::Json,
            "env" => Format::Env,
            _ => return None,
        })
    }
}

/// A valid environment variable name (letters, digits, `_`, not starting with a digit).
pub fn valid_var(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub use crate::discover::join;

pub fn render(eps: &Endpoints, format: Format, var: &str) -> String {
    match format {
        Format::Lines => eps.iter().map(|e| format!("{e}\n")).collect(),
        Format::Csv => format!("{}\n", join(eps, ",")),
        // Endpoint strings never need JSON escaping (digits, hex, '.', ':', '[', ']').
        Format::Json => format!(
            "[{}]\n",
            eps.iter()
                .map(|e| format!("\"{e}\""))
                .collect::<Vec<_>>()
                .join(",")
        ),
        Format::Env => format!("{var}={}\n", join(eps, ",")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eps() -> Endpoints {
        [
            "[fd00::1]:11211",
            "10.0.0.2:11211",
            "10.0.0.10:11211",
            "10.0.0.2:11211",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect()
    }

    #[test]
    fn formats_sorted_deduplicated_bracketed() {
        let e = eps();
        assert_eq!(
            render(&e, Format::Lines, ""),
            "10.0.0.2:11211\n10.0.0.10:11211\n[fd00::1]:11211\n"
        );
        assert_eq!(
            render(&e, Format::Csv, ""),
            "10.0.0.2:11211,10.0.0.10:11211,[fd00::1]:11211\n"
        );
        assert_eq!(
            render(&e, Format::Json, ""),
            "[\"10.0.0.2:11211\",\"10.0.0.10:11211\",\"[fd00::1]:11211\"]\n"
        );
        assert_eq!(
            render(&e, Format::Env, "MC"),
            "MC=10.0.0.2:11211,10.0.0.10:11211,[fd00::1]:11211\n"
        );
        assert_eq!(render(&Endpoints::new(), Format::Lines, ""), "");
        assert_eq!(render(&Endpoints::new(), Format::Json, ""), "[]\n");
    }

    #[test]
    fn var_names() {
        assert!(valid_var("MEMCACHED_SERVERS"));
        assert!(!valid_var("1X"));
        assert!(!valid_var("A-B"));
        assert!(!valid_var(""));
    }
}
