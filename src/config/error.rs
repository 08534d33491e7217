//! Configuration errors that say where the bad value came from, like
//! `kamailio -c`: `sipfront.toml:12:9: backend_set[0].destination[1].uri:
//! "sip:foo:99999": port out of range`, or the environment variable or
//! command-line flag that set it. Also the internal bookkeeping that makes
//! that possible: every raw value travels with its [`Origin`].

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};

/// Where an error points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A position in a file (the config file or a dispatcher.list); line
    /// and column are 1-based, the column counted in characters.
    File {
        path: PathBuf,
        line: usize,
        column: usize,
    },
    /// A file as a whole: unreadable, or missing something.
    WholeFile { path: PathBuf },
    /// An environment variable, e.g. `SIPFRONT_LISTEN`.
    Env { var: String },
    /// A command-line flag, e.g. `--listen`.
    Flag { flag: String },
    /// Nothing was given where something is needed (no file, no flags).
    Defaults,
}

/// A configuration error: where, which key, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub location: Location,
    /// The key path, e.g. `backend_set[0].destination[1].uri`; empty when
    /// the location says it all (syntax errors, environment, flags).
    pub key: String,
    pub reason: String,
}

impl ConfigError {
    /// The file the error is in, if it is in one.
    pub fn file(&self) -> Option<&Path> {
        match &self.location {
            Location::File { path, .. } | Location::WholeFile { path } => Some(path),
            _ => None,
        }
    }

    /// 1-based line, for errors at a position in a file.
    pub fn line(&self) -> Option<usize> {
        match self.location {
            Location::File { line, .. } => Some(line),
            _ => None,
        }
    }

    /// 1-based column in characters, for errors at a position in a file.
    pub fn column(&self) -> Option<usize> {
        match self.location {
            Location::File { column, .. } => Some(column),
            _ => None,
        }
    }

    /// `line:column`, for tests and terse logs.
    pub fn line_col(&self) -> Option<(usize, usize)> {
        Some((self.line()?, self.column()?))
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Location::File { path, line, column } => {
                write!(f, "{}:{line}:{column}: ", path.display())?
            }
            Location::WholeFile { path } => write!(f, "{}: ", path.display())?,
            Location::Env { var } => write!(f, "environment variable {var}: ")?,
            Location::Flag { flag } => write!(f, "flag {flag}: ")?,
            Location::Defaults => f.write_str("configuration: ")?,
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.reason)
    }
}

impl std::error::Error for ConfigError {}

/// Where a raw value came from.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub(crate) enum Origin {
    /// A built-in default.
    #[default]
    Default,
    /// A byte range in the main config file.
    File(Range<usize>),
    Env(&'static str),
    Flag(&'static str),
    /// A position in another file (a dispatcher.list).
    At {
        path: PathBuf,
        line: usize,
        column: usize,
    },
}

/// A raw value with its origin. Deserializes through [`toml::Spanned`], so
/// every value read from the file knows its byte range.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Val<T> {
    pub value: T,
    pub origin: Origin,
}

impl<T> Val<T> {
    pub fn new(value: T, origin: Origin) -> Self {
        Val { value, origin }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Val<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = toml::Spanned::<T>::deserialize(d)?;
        let span = s.span();
        Ok(Val {
            value: s.into_inner(),
            origin: Origin::File(span),
        })
    }
}

/// The main config file's path and text, to turn byte ranges into
/// `line:column`.
#[derive(Clone, Debug)]
pub(crate) struct SourceFile {
    pub path: PathBuf,
    pub text: String,
}

/// Turns origins into locations.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ctx<'a> {
    pub file: Option<&'a SourceFile>,
}

impl Ctx<'_> {
    pub fn locate(&self, origin: &Origin) -> Location {
        match (origin, self.file) {
            (Origin::File(span), Some(f)) => {
                let (line, column) = line_col(&f.text, span.start);
                Location::File {
                    path: f.path.clone(),
                    line,
                    column,
                }
            }
            (Origin::Default, Some(f)) => Location::WholeFile {
                path: f.path.clone(),
            },
            (Origin::Default | Origin::File(_), None) => Location::Defaults,
            (Origin::Env(v), _) => Location::Env {
                var: (*v).to_string(),
            },
            (Origin::Flag(v), _) => Location::Flag {
                flag: (*v).to_string(),
            },
            (Origin::At { path, line, column }, _) => Location::File {
                path: path.clone(),
                line: *line,
                column: *column,
            },
        }
    }

    /// An error at `origin`. The key is dropped for environment and flag
    /// origins, where the variable or flag already says which key.
    pub fn err(
        &self,
        origin: &Origin,
        key: impl Into<String>,
        reason: impl Into<String>,
    ) -> ConfigError {
        let location = self.locate(origin);
        let key = match location {
            Location::Env { .. } | Location::Flag { .. } => String::new(),
            _ => key.into(),
        };
        ConfigError {
            location,
            key,
            reason: reason.into(),
        }
    }
}

/// 1-based line and character column of byte `offset` in `text`.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters() {
        let t = "a = 1\nbé = \"x\"\n";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 4), (1, 5));
        assert_eq!(line_col(t, 6), (2, 1));
        // `"` after "bé = " is byte 12, character 6 of line 2.
        assert_eq!(line_col(t, 12), (2, 6));
        assert_eq!(line_col(t, 1000), (3, 1));
    }

    #[test]
    fn display_forms() {
        let e = ConfigError {
            location: Location::File {
                path: "sipfront.toml".into(),
                line: 12,
                column: 9,
            },
            key: "backend_set[0].destination[1].uri".into(),
            reason: "\"sip:foo:99999\": port out of range".into(),
        };
        assert_eq!(
            e.to_string(),
            "sipfront.toml:12:9: backend_set[0].destination[1].uri: \"sip:foo:99999\": port out of range"
        );
        assert_eq!(e.line_col(), Some((12, 9)));
        let e = ConfigError {
            location: Location::Env {
                var: "SIPFRONT_WORKERS".into(),
            },
            key: String::new(),
            reason: "workers must be >= 1".into(),
        };
        assert_eq!(
            e.to_string(),
            "environment variable SIPFRONT_WORKERS: workers must be >= 1"
        );
    }
}
