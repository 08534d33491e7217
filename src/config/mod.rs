//! Configuration: the TOML schema, its defaults, environment and flag
//! overrides, Kamailio dispatcher.list import, and validation with errors
//! that point at `file:line:column` like `kamailio -c`.
//!
//! Precedence, lowest first: built-in defaults, the config file,
//! `SIPFRONT_*` environment variables, command-line flags. [`load`] reads
//! all layers, validates, resolves destination host names and returns a
//! [`Config`] that is valid by construction. `docs/configuration.md`
//! documents every key, variable and flag.
//!
//! | module | owns |
//! |---|---|
//! | [`schema`] | the typed [`Config`], defaults, value parsers |
//! | [`error`] | [`ConfigError`] and where a value came from |
//! | `file` | the serde mirror of the TOML, with spans |
//! | [`env`] | `SIPFRONT_*` variables and [`CliOverrides`] |
//! | [`dispatcher_list`] | Kamailio's dispatcher.list format |
//! | `validate` | raw layers → [`Config`] |

pub mod dispatcher_list;
pub mod env;
pub mod error;
mod file;
pub mod schema;
mod validate;

#[cfg(test)]
mod tests;

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;

pub use env::{process_env, CliOverrides, ENV_VARS};
pub use error::{ConfigError, Location};
pub use schema::{
    AdminConfig, Advertise, BackendSetConfig, Config, DestinationConfig, DrainConfig, IoDriver,
    Listen, LogConfig, LogFormat, ProbeConfig, ProxyConfig, ProxyMode, ReplyCode, RoutingConfig,
    ServerConfig, TransactionConfig, Workers,
};

use env::Overrides;
use error::{line_col, Ctx, SourceFile};
use file::FileConfig;

/// Loads the configuration: defaults < the file at `path` (or
/// `$SIPFRONT_CONFIG`; no file at all is fine) < environment (`env`,
/// usually [`process_env`]) < `cli`; then validates it and resolves
/// destination host names with the system resolver.
pub fn load(
    path: Option<&Path>,
    cli: &CliOverrides,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    load_with_resolver(path, cli, env, &system_resolver)
}

/// [`load`] with a custom resolver for destination host names (tests,
/// or a caller with its own DNS).
pub fn load_with_resolver(
    path: Option<&Path>,
    cli: &CliOverrides,
    env: &dyn Fn(&str) -> Option<String>,
    resolve: &dyn Fn(&str, u16) -> io::Result<Vec<SocketAddr>>,
) -> Result<Config, ConfigError> {
    let path = path
        .map(Path::to_path_buf)
        .or_else(|| env::config_path(env));
    let source = match path {
        Some(path) => match std::fs::read_to_string(&path) {
            Ok(text) => Some(SourceFile { path, text }),
            Err(e) => {
                return Err(ConfigError {
                    location: Location::WholeFile { path },
                    key: String::new(),
                    reason: format!("cannot read config file: {e}"),
                })
            }
        },
        None => None,
    };
    load_source(source.as_ref(), cli, env, resolve)
}

/// Parses and validates config text as if read from `name` (errors are
/// reported against that name; a `list_file` is relative to its
/// directory). No environment, no flags.
pub fn from_toml_str(name: &Path, text: &str) -> Result<Config, ConfigError> {
    let source = SourceFile {
        path: name.to_path_buf(),
        text: text.to_string(),
    };
    load_source(
        Some(&source),
        &CliOverrides::default(),
        &|_| None,
        &system_resolver,
    )
}

fn load_source(
    source: Option<&SourceFile>,
    cli: &CliOverrides,
    env: &dyn Fn(&str) -> Option<String>,
    resolve: &dyn Fn(&str, u16) -> io::Result<Vec<SocketAddr>>,
) -> Result<Config, ConfigError> {
    let env_layer = Overrides::from_env(env)?;
    let mut raw = match source {
        Some(s) => parse_toml(s)?,
        None => FileConfig::default(),
    };
    env_layer.under(Overrides::from_cli(cli)).apply(&mut raw);
    let base_dir = source.and_then(|s| s.path.parent());
    validate::build(raw, Ctx { file: source }, base_dir, resolve)
}

fn parse_toml(s: &SourceFile) -> Result<FileConfig, ConfigError> {
    toml::from_str::<FileConfig>(&s.text).map_err(|e| {
        let location = match e.span() {
            Some(span) => {
                let (line, column) = line_col(&s.text, span.start);
                Location::File {
                    path: s.path.clone(),
                    line,
                    column,
                }
            }
            None => Location::WholeFile {
                path: s.path.clone(),
            },
        };
        ConfigError {
            location,
            key: String::new(),
            reason: e.message().trim_end().to_string(),
        }
    })
}

/// `getaddrinfo` through std.
fn system_resolver(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    Ok((host, port).to_socket_addrs()?.collect())
}
