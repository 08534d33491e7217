//! The config file as written: serde structs that mirror the TOML, every
//! key optional (defaults are applied during validation), unknown keys
//! rejected, and every value wrapped in [`Val`] so it keeps its byte range
//! for error messages. Environment variables and flags are written into
//! these same structs (with their own origin) before validation.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer};

use super::error::Val;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct FileConfig {
    pub server: ServerFile,
    pub log: LogFile,
    pub proxy: ProxyFile,
    pub transaction: TransactionFile,
    pub routing: RoutingFile,
    pub backend_set: Vec<Val<BackendSetFile>>,
    pub probe: ProbeFile,
    pub admin: AdminFile,
    pub drain: DrainFile,
    pub nat: NatFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct NatFile {
    pub enabled: Option<Val<bool>>,
    pub tests: Option<Val<Vec<Val<String>>>>,
    pub contact: Option<Val<String>>,
    pub register: Option<Val<String>>,
    pub keepalive: Option<Val<String>>,
    pub keepalive_interval_ms: Option<Val<i64>>,
    pub keepalive_failures: Option<Val<i64>>,
    pub keepalive_from: Option<Val<String>>,
    pub max_flows: Option<Val<i64>>,
    pub dialog_timeout_ms: Option<Val<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ProbeFile {
    pub enabled: Option<Val<bool>>,
    pub method: Option<Val<String>>,
    pub from: Option<Val<String>>,
    pub interval_ms: Option<Val<i64>>,
    pub timeout_ms: Option<Val<i64>>,
    pub down_threshold: Option<Val<i64>>,
    pub up_threshold: Option<Val<i64>>,
    pub reply_codes: Option<Val<Vec<Val<Scalar>>>>,
    pub port: Option<Val<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct AdminFile {
    pub listen: Option<Val<String>>,
    pub token: Option<Val<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct DrainFile {
    pub grace_ms: Option<Val<i64>>,
    pub quiet_ms: Option<Val<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ServerFile {
    pub workers: Option<Val<Scalar>>,
    pub io_driver: Option<Val<String>>,
    pub listen: Option<Val<Vec<Val<String>>>>,
    pub advertise: Option<Val<String>>,
    pub egress_port_base: Option<Val<i64>>,
    pub recv_buffer: Option<Val<i64>>,
    pub send_buffer: Option<Val<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct LogFile {
    pub format: Option<Val<String>>,
    pub level: Option<Val<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ProxyFile {
    pub mode: Option<Val<String>>,
    pub preloaded_route: Option<Val<String>>,
    pub allow_sources: Option<Val<Vec<Val<String>>>>,
    pub deny_sources: Option<Val<Vec<Val<String>>>>,
    pub record_route: Option<Val<bool>>,
    pub max_message_size: Option<Val<i64>>,
    pub max_headers: Option<Val<i64>>,
    pub max_forwards: Option<Val<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct TransactionFile {
    pub t1_ms: Option<Val<i64>>,
    pub t2_ms: Option<Val<i64>>,
    pub t4_ms: Option<Val<i64>>,
    pub fr_timeout_ms: Option<Val<i64>>,
    pub fr_inv_timeout_ms: Option<Val<i64>>,
    pub max_transactions: Option<Val<i64>>,
    pub max_tries: Option<Val<i64>>,
    pub failover_codes: Option<Val<Vec<Val<i64>>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RoutingFile {
    pub default: Option<Val<String>>,
    pub rule: Vec<Val<RuleFile>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleFile {
    pub set: Val<String>,
    #[serde(default)]
    pub methods: Option<Val<Vec<Val<String>>>>,
    #[serde(default)]
    pub ruri_user_prefix: Option<Val<String>>,
    #[serde(default)]
    pub ruri_domain: Option<Val<String>>,
    #[serde(default)]
    pub source: Option<Val<Vec<Val<String>>>>,
    #[serde(default)]
    pub header: Option<Val<HeaderFile>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HeaderFile {
    pub name: Val<String>,
    #[serde(default)]
    pub value: Option<Val<String>>,
    #[serde(default)]
    pub prefix: Option<Val<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BackendSetFile {
    pub name: Val<String>,
    /// A name, or a Kamailio number as a string or an integer.
    #[serde(default)]
    pub algorithm: Option<Val<Scalar>>,
    #[serde(default)]
    pub list_file: Option<Val<String>>,
    #[serde(default)]
    pub setid: Option<Val<i64>>,
    #[serde(default)]
    pub destination: Vec<Val<DestinationFile>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DestinationFile {
    pub uri: Val<String>,
    #[serde(default)]
    pub weight: Option<Val<i64>>,
    #[serde(default)]
    pub priority: Option<Val<i64>>,
    #[serde(default)]
    pub attrs: BTreeMap<String, String>,
}

/// A value that may be written as a string or an integer
/// (`workers = "auto"` or `workers = 4`, `algorithm = 4`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Scalar {
    Str(String),
    Int(i64),
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an integer")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Str(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                i64::try_from(v)
                    .map(Scalar::Int)
                    .map_err(|_| E::custom("integer too large"))
            }
        }
        d.deserialize_any(V)
    }
}
