//! Environment and command-line overrides, for containers and quick
//! starts: `SIPFRONT_*` variables and the flags in [`CliOverrides`] are
//! read into one layer (flags win over the environment), which is then
//! written over the config file's values with its own origin, so a bad
//! value is reported against the variable or flag that set it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::error::{ConfigError, Location, Origin, Val};
use super::file::{BackendSetFile, DestinationFile, FileConfig, Scalar};
use super::schema::DEFAULT_SET;

pub const ENV_CONFIG: &str = "SIPFRONT_CONFIG";
pub const ENV_WORKERS: &str = "SIPFRONT_WORKERS";
pub const ENV_IO_DRIVER: &str = "SIPFRONT_IO_DRIVER";
pub const ENV_LISTEN: &str = "SIPFRONT_LISTEN";
pub const ENV_ADVERTISE: &str = "SIPFRONT_ADVERTISE";
pub const ENV_BACKENDS: &str = "SIPFRONT_BACKENDS";
pub const ENV_ALGORITHM: &str = "SIPFRONT_ALGORITHM";
pub const ENV_MODE: &str = "SIPFRONT_MODE";
pub const ENV_RECORD_ROUTE: &str = "SIPFRONT_RECORD_ROUTE";
pub const ENV_LOG_LEVEL: &str = "SIPFRONT_LOG_LEVEL";
pub const ENV_LOG_FORMAT: &str = "SIPFRONT_LOG_FORMAT";
pub const ENV_MAX_MESSAGE_SIZE: &str = "SIPFRONT_MAX_MESSAGE_SIZE";
pub const ENV_ADMIN_LISTEN: &str = "SIPFRONT_ADMIN_LISTEN";
pub const ENV_ADMIN_TOKEN: &str = "SIPFRONT_ADMIN_TOKEN";
pub const ENV_PROBE: &str = "SIPFRONT_PROBE";
pub const ENV_PROBE_INTERVAL_MS: &str = "SIPFRONT_PROBE_INTERVAL_MS";
pub const ENV_DRAIN_GRACE_MS: &str = "SIPFRONT_DRAIN_GRACE_MS";
pub const ENV_NAT: &str = "SIPFRONT_NAT";
pub const ENV_NAT_KEEPALIVE: &str = "SIPFRONT_NAT_KEEPALIVE";
pub const ENV_NAT_KEEPALIVE_INTERVAL_MS: &str = "SIPFRONT_NAT_KEEPALIVE_INTERVAL_MS";
/// Read by `sipfront ctl` only: the admin API's URL.
pub const ENV_ADMIN_URL: &str = "SIPFRONT_ADMIN_URL";

/// Every variable the configuration reads (`sipfront ctl` also reads
/// [`ENV_ADMIN_URL`] and [`ENV_ADMIN_TOKEN`]).
pub const ENV_VARS: &[&str] = &[
    ENV_CONFIG,
    ENV_WORKERS,
    ENV_IO_DRIVER,
    ENV_LISTEN,
    ENV_ADVERTISE,
    ENV_BACKENDS,
    ENV_ALGORITHM,
    ENV_MODE,
    ENV_RECORD_ROUTE,
    ENV_LOG_LEVEL,
    ENV_LOG_FORMAT,
    ENV_MAX_MESSAGE_SIZE,
    ENV_ADMIN_LISTEN,
    ENV_ADMIN_TOKEN,
    ENV_PROBE,
    ENV_PROBE_INTERVAL_MS,
    ENV_DRAIN_GRACE_MS,
    ENV_NAT,
    ENV_NAT_KEEPALIVE,
    ENV_NAT_KEEPALIVE_INTERVAL_MS,
];

/// The process environment, for [`super::load`]'s `env` argument.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Values given on the command line; the highest-precedence layer.
/// Strings are checked by [`super::load`], which names the flag on error.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CliOverrides {
    /// `--listen`, repeatable; replaces `server.listen`.
    pub listen: Vec<String>,
    /// `--backend`, repeatable; replaces the default set's destinations.
    pub backends: Vec<String>,
    /// `--algorithm`, for the default set.
    pub algorithm: Option<String>,
    /// `--workers`.
    pub workers: Option<String>,
    /// `--io-driver`.
    pub io_driver: Option<String>,
    /// `--mode`.
    pub mode: Option<String>,
    /// `--advertise`.
    pub advertise: Option<String>,
    /// `--log-format`.
    pub log_format: Option<String>,
    /// `--nat`.
    pub nat: bool,
    /// `--nat-keepalive`.
    pub nat_keepalive: Option<String>,
    /// From `-v`/`-q`.
    pub log_level: Option<String>,
}

/// One override layer (environment or flags).
#[derive(Debug, Default)]
pub(crate) struct Overrides {
    pub workers: Option<Val<Scalar>>,
    pub io_driver: Option<Val<String>>,
    pub listen: Option<Vec<Val<String>>>,
    pub advertise: Option<Val<String>>,
    pub backends: Option<Vec<Val<String>>>,
    pub algorithm: Option<Val<Scalar>>,
    pub mode: Option<Val<String>>,
    pub record_route: Option<Val<bool>>,
    pub log_level: Option<Val<String>>,
    pub log_format: Option<Val<String>>,
    pub max_message_size: Option<Val<i64>>,
    pub admin_listen: Option<Val<String>>,
    pub admin_token: Option<Val<String>>,
    pub probe: Option<Val<bool>>,
    pub probe_interval_ms: Option<Val<i64>>,
    pub drain_grace_ms: Option<Val<i64>>,
    pub nat: Option<Val<bool>>,
    pub nat_keepalive: Option<Val<String>>,
    pub nat_keepalive_interval_ms: Option<Val<i64>>,
}

fn env_err(var: &str, reason: String) -> ConfigError {
    ConfigError {
        location: Location::Env {
            var: var.to_string(),
        },
        key: String::new(),
        reason,
    }
}

/// A variable's value, trimmed; an empty variable counts as unset.
fn get(env: &dyn Fn(&str) -> Option<String>, var: &str) -> Option<String> {
    env(var)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Splits a comma-separated list, trimming items and skipping empty ones.
pub(crate) fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// The config file named by `SIPFRONT_CONFIG`.
pub(crate) fn config_path(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    get(env, ENV_CONFIG).map(PathBuf::from)
}

impl Overrides {
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Overrides, ConfigError> {
        let s = |var: &'static str| get(env, var).map(|v| Val::new(v, Origin::Env(var)));
        let list = |var: &'static str| {
            get(env, var).map(|v| {
                split_list(&v)
                    .into_iter()
                    .map(|x| Val::new(x, Origin::Env(var)))
                    .collect::<Vec<_>>()
            })
        };
        let record_route = match get(env, ENV_RECORD_ROUTE) {
            Some(v) => Some(Val::new(
                parse_bool(&v).ok_or_else(|| {
                    env_err(
                        ENV_RECORD_ROUTE,
                        format!("{v:?}: expected true or false (also 1/0, yes/no, on/off)"),
                    )
                })?,
                Origin::Env(ENV_RECORD_ROUTE),
            )),
            None => None,
        };
        let max_message_size = match get(env, ENV_MAX_MESSAGE_SIZE) {
            Some(v) => Some(Val::new(
                v.parse::<i64>().map_err(|_| {
                    env_err(
                        ENV_MAX_MESSAGE_SIZE,
                        format!("{v:?}: expected an integer number of bytes"),
                    )
                })?,
                Origin::Env(ENV_MAX_MESSAGE_SIZE),
            )),
            None => None,
        };
        let int = |var: &'static str, what: &str| -> Result<Option<Val<i64>>, ConfigError> {
            match get(env, var) {
                Some(v) => Ok(Some(Val::new(
                    v.parse::<i64>().map_err(|_| {
                        env_err(var, format!("{v:?}: expected an integer number of {what}"))
                    })?,
                    Origin::Env(var),
                ))),
                None => Ok(None),
            }
        };
        let probe_interval_ms = int(ENV_PROBE_INTERVAL_MS, "milliseconds")?;
        let drain_grace_ms = int(ENV_DRAIN_GRACE_MS, "milliseconds")?;
        let nat_keepalive_interval_ms = int(ENV_NAT_KEEPALIVE_INTERVAL_MS, "milliseconds")?;
        let switch = |var: &'static str| -> Result<Option<Val<bool>>, ConfigError> {
            match get(env, var) {
                Some(v) => Ok(Some(Val::new(
                    parse_bool(&v).ok_or_else(|| {
                        env_err(
                            var,
                            format!("{v:?}: expected on or off (also true/false, 1/0, yes/no)"),
                        )
                    })?,
                    Origin::Env(var),
                ))),
                None => Ok(None),
            }
        };
        let probe = switch(ENV_PROBE)?;
        let nat = switch(ENV_NAT)?;
        // An empty SIPFRONT_ADMIN_LISTEN is not "unset": it turns the API off.
        let admin_listen = env(ENV_ADMIN_LISTEN).map(|v| {
            let v = v.trim();
            Val::new(
                if v.is_empty() {
                    "off".to_string()
                } else {
                    v.to_string()
                },
                Origin::Env(ENV_ADMIN_LISTEN),
            )
        });
        let listen = list(ENV_LISTEN);
        if listen.as_ref().is_some_and(Vec::is_empty) {
            return Err(env_err(ENV_LISTEN, "no address in the list".into()));
        }
        let backends = list(ENV_BACKENDS);
        if backends.as_ref().is_some_and(Vec::is_empty) {
            return Err(env_err(ENV_BACKENDS, "no URI in the list".into()));
        }
        Ok(Overrides {
            workers: get(env, ENV_WORKERS)
                .map(|v| Val::new(Scalar::Str(v), Origin::Env(ENV_WORKERS))),
            io_driver: s(ENV_IO_DRIVER),
            listen,
            advertise: s(ENV_ADVERTISE),
            backends,
            algorithm: get(env, ENV_ALGORITHM)
                .map(|v| Val::new(Scalar::Str(v), Origin::Env(ENV_ALGORITHM))),
            mode: s(ENV_MODE),
            record_route,
            log_level: s(ENV_LOG_LEVEL),
            log_format: s(ENV_LOG_FORMAT),
            max_message_size,
            admin_listen,
            admin_token: s(ENV_ADMIN_TOKEN),
            probe,
            probe_interval_ms,
            drain_grace_ms,
            nat,
            nat_keepalive: s(ENV_NAT_KEEPALIVE),
            nat_keepalive_interval_ms,
        })
    }

    pub fn from_cli(cli: &CliOverrides) -> Overrides {
        let s = |v: &Option<String>, flag: &'static str| {
            v.as_ref().map(|x| Val::new(x.clone(), Origin::Flag(flag)))
        };
        let list = |v: &[String], flag: &'static str| {
            (!v.is_empty()).then(|| {
                v.iter()
                    .map(|x| Val::new(x.clone(), Origin::Flag(flag)))
                    .collect::<Vec<_>>()
            })
        };
        Overrides {
            workers: cli
                .workers
                .as_ref()
                .map(|w| Val::new(Scalar::Str(w.clone()), Origin::Flag("--workers"))),
            io_driver: s(&cli.io_driver, "--io-driver"),
            listen: list(&cli.listen, "--listen"),
            advertise: s(&cli.advertise, "--advertise"),
            backends: list(&cli.backends, "--backend"),
            algorithm: cli
                .algorithm
                .as_ref()
                .map(|a| Val::new(Scalar::Str(a.clone()), Origin::Flag("--algorithm"))),
            mode: s(&cli.mode, "--mode"),
            record_route: None,
            log_level: s(&cli.log_level, "-v/-q"),
            log_format: s(&cli.log_format, "--log-format"),
            max_message_size: None,
            admin_listen: None,
            admin_token: None,
            probe: None,
            probe_interval_ms: None,
            drain_grace_ms: None,
            nat: cli.nat.then(|| Val::new(true, Origin::Flag("--nat"))),
            nat_keepalive: s(&cli.nat_keepalive, "--nat-keepalive"),
            nat_keepalive_interval_ms: None,
        }
    }

    /// `self` with every value `top` sets replaced by `top`'s.
    pub fn under(self, top: Overrides) -> Overrides {
        Overrides {
            workers: top.workers.or(self.workers),
            io_driver: top.io_driver.or(self.io_driver),
            listen: top.listen.or(self.listen),
            advertise: top.advertise.or(self.advertise),
            backends: top.backends.or(self.backends),
            algorithm: top.algorithm.or(self.algorithm),
            mode: top.mode.or(self.mode),
            record_route: top.record_route.or(self.record_route),
            log_level: top.log_level.or(self.log_level),
            log_format: top.log_format.or(self.log_format),
            max_message_size: top.max_message_size.or(self.max_message_size),
            admin_listen: top.admin_listen.or(self.admin_listen),
            admin_token: top.admin_token.or(self.admin_token),
            probe: top.probe.or(self.probe),
            nat: top.nat.or(self.nat),
            nat_keepalive: top.nat_keepalive.or(self.nat_keepalive),
            nat_keepalive_interval_ms: top
                .nat_keepalive_interval_ms
                .or(self.nat_keepalive_interval_ms),
            probe_interval_ms: top.probe_interval_ms.or(self.probe_interval_ms),
            drain_grace_ms: top.drain_grace_ms.or(self.drain_grace_ms),
        }
    }

    /// Writes the overrides over the file's values.
    pub fn apply(self, f: &mut FileConfig) {
        if let Some(v) = self.workers {
            f.server.workers = Some(v);
        }
        if let Some(v) = self.io_driver {
            f.server.io_driver = Some(v);
        }
        if let Some(items) = self.listen {
            let origin = items.first().map(|v| v.origin.clone()).unwrap_or_default();
            f.server.listen = Some(Val::new(items, origin));
        }
        if let Some(v) = self.advertise {
            f.server.advertise = Some(v);
        }
        if let Some(v) = self.mode {
            f.proxy.mode = Some(v);
        }
        if let Some(v) = self.record_route {
            f.proxy.record_route = Some(v);
        }
        if let Some(v) = self.max_message_size {
            f.proxy.max_message_size = Some(v);
        }
        if let Some(v) = self.log_level {
            f.log.level = Some(v);
        }
        if let Some(v) = self.admin_listen {
            f.admin.listen = Some(v);
        }
        if let Some(v) = self.admin_token {
            f.admin.token = Some(v);
        }
        if let Some(v) = self.probe {
            f.probe.enabled = Some(v);
        }
        if let Some(v) = self.probe_interval_ms {
            f.probe.interval_ms = Some(v);
        }
        if let Some(v) = self.drain_grace_ms {
            f.drain.grace_ms = Some(v);
        }
        if let Some(v) = self.nat {
            f.nat.enabled = Some(v);
        }
        if let Some(v) = self.nat_keepalive {
            f.nat.keepalive = Some(v);
        }
        if let Some(v) = self.nat_keepalive_interval_ms {
            f.nat.keepalive_interval_ms = Some(v);
        }
        if let Some(v) = self.log_format {
            f.log.format = Some(v);
        }
        let name = default_set_name(f);
        if let Some(items) = self.backends {
            let origin = items.first().map(|v| v.origin.clone()).unwrap_or_default();
            let dests: Vec<Val<DestinationFile>> = items
                .into_iter()
                .map(|uri| {
                    let o = uri.origin.clone();
                    Val::new(
                        DestinationFile {
                            uri,
                            weight: None,
                            priority: None,
                            attrs: BTreeMap::new(),
                        },
                        o,
                    )
                })
                .collect();
            match f
                .backend_set
                .iter_mut()
                .find(|s| s.value.name.value == name)
            {
                Some(set) => {
                    set.value.destination = dests;
                    set.value.list_file = None;
                }
                None => f.backend_set.push(Val::new(
                    BackendSetFile {
                        name: Val::new(name.clone(), origin.clone()),
                        algorithm: None,
                        list_file: None,
                        setid: None,
                        destination: dests,
                    },
                    origin,
                )),
            }
        }
        if let Some(v) = self.algorithm {
            if let Some(set) = f
                .backend_set
                .iter_mut()
                .find(|s| s.value.name.value == name)
            {
                set.value.algorithm = Some(v);
            }
        }
    }
}

/// The set the environment's and flags' backends and algorithm apply to:
/// `routing.default` if given, else the only set, else `"default"`.
fn default_set_name(f: &FileConfig) -> String {
    if let Some(d) = &f.routing.default {
        return d.value.clone();
    }
    match f.backend_set.as_slice() {
        [only] => only.value.name.value.clone(),
        _ => DEFAULT_SET.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn lists_split_on_commas() {
        assert_eq!(
            split_list(" udp:1.2.3.4:5060 ,udp:[::1]:5060,, "),
            ["udp:1.2.3.4:5060", "udp:[::1]:5060"]
        );
        let o = Overrides::from_env(&env_of(&[(
            ENV_BACKENDS,
            "sip:10.0.0.1:5060, sip:10.0.0.2",
        )]))
        .unwrap();
        let b = o.backends.unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(b[1].value, "sip:10.0.0.2");
        assert_eq!(b[1].origin, Origin::Env(ENV_BACKENDS));
    }

    #[test]
    fn empty_variables_are_unset() {
        let o = Overrides::from_env(&env_of(&[(ENV_WORKERS, "  "), (ENV_LISTEN, "")])).unwrap();
        assert!(o.workers.is_none());
        assert!(o.listen.is_none());
        assert_eq!(config_path(&env_of(&[(ENV_CONFIG, "")])), None);
        assert_eq!(
            config_path(&env_of(&[(ENV_CONFIG, "/etc/sipfront.toml")])),
            Some(PathBuf::from("/etc/sipfront.toml"))
        );
    }

    #[test]
    fn typed_variables_are_checked() {
        let e = Overrides::from_env(&env_of(&[(ENV_RECORD_ROUTE, "maybe")])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "environment variable SIPFRONT_RECORD_ROUTE: \"maybe\": expected true or false (also 1/0, yes/no, on/off)"
        );
        let o = Overrides::from_env(&env_of(&[(ENV_RECORD_ROUTE, "off")])).unwrap();
        assert!(!o.record_route.unwrap().value);
        let e = Overrides::from_env(&env_of(&[(ENV_MAX_MESSAGE_SIZE, "64k")])).unwrap_err();
        assert!(e
            .to_string()
            .starts_with("environment variable SIPFRONT_MAX_MESSAGE_SIZE: "));
        let e = Overrides::from_env(&env_of(&[(ENV_LISTEN, ",")])).unwrap_err();
        assert!(e.to_string().contains("no address"));
    }

    #[test]
    fn flags_win_over_environment() {
        let env =
            Overrides::from_env(&env_of(&[(ENV_MODE, "stateful"), (ENV_WORKERS, "2")])).unwrap();
        let cli = Overrides::from_cli(&CliOverrides {
            workers: Some("3".into()),
            ..Default::default()
        });
        let o = env.under(cli);
        assert_eq!(o.workers.unwrap().origin, Origin::Flag("--workers"));
        assert_eq!(o.mode.unwrap().origin, Origin::Env(ENV_MODE));
    }
}
