//! The command line: flags a Kamailio admin will recognise, turned into
//! [`CliOverrides`] for [`crate::config::load`], and the `--check-config`
//! run (like `kamailio -c`) as a function returning the exit code.

use std::io::Write;
use std::path::PathBuf;

use clap::builder::PossibleValuesParser;
use clap::{ArgAction, Parser, Subcommand};

use crate::config::env::{ENV_ADMIN_TOKEN, ENV_ADMIN_URL};
use crate::config::schema::DEFAULT_ADMIN_LISTEN;
pub use crate::config::CliOverrides;
use crate::config::{load, IoDriver, Location, LogFormat, ProxyMode, ENV_VARS};
use crate::dispatch::algorithm::SUPPORTED;

const QUICK_START: &str = "\
Quick start, no config file (Kamailio's dispatcher with a 2-line list):
  sipfront --listen udp:127.0.0.1:5060 --backend sip:127.0.0.1:5070 --backend sip:127.0.0.1:5080

Check a config like `kamailio -c`, then run it:
  sipfront -c /etc/sipfront/sipfront.toml --check-config
  sipfront -c /etc/sipfront/sipfront.toml

Precedence: built-in defaults < config file < SIPFRONT_* environment < flags.";

const AFTER_ENVIRONMENT: &str = "\
An existing Kamailio dispatcher.list can be used as is: list_file in a [[backend_set]].
SIGHUP reloads the config; SIGTERM drains (503 to new calls) and exits within
drain.grace_ms. `sipfront ctl --help` talks to the admin API.
Reference: docs/configuration.md, docs/operations.md";

/// The text after the flags: the quick start, then every variable of
/// [`ENV_VARS`] (so the list cannot fall behind), wrapped at 80 columns.
fn after_help() -> String {
    let mut s = format!("{QUICK_START}\nEnvironment (formats in docs/configuration.md):\n");
    let mut line = String::new();
    for (i, var) in ENV_VARS.iter().enumerate() {
        let end = if i + 1 < ENV_VARS.len() { ',' } else { '.' };
        if !line.is_empty() && line.len() + 1 + var.len() + 1 > 80 {
            s.push_str(&line);
            s.push('\n');
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(var);
        line.push(end);
    }
    s.push_str(&line);
    s.push('\n');
    s.push_str(AFTER_ENVIRONMENT);
    s
}

/// sipfront: a thread-per-core SIP load balancer, in place of Kamailio's
/// dispatcher module.
#[derive(Parser, Debug, Clone, PartialEq, Eq)]
#[command(
    name = "sipfront",
    version,
    about = "Thread-per-core SIP load balancer (Kamailio dispatcher replacement)",
    after_help = after_help()
)]
pub struct Cli {
    /// Config file (TOML), like `kamailio -f` (Kamailio's `-c` is
    /// --check-config here). Without it, $SIPFRONT_CONFIG, else built-in
    /// defaults plus environment and flags.
    #[arg(
        short = 'c',
        long = "config",
        value_name = "FILE",
        visible_short_alias = 'f'
    )]
    pub config: Option<PathBuf>,

    /// Validate the configuration, print a summary of listen sockets,
    /// backend sets, destinations and rules, and exit: 0 if valid, 1 with
    /// `file:line:column: reason` if not (like `kamailio -c`).
    #[arg(long)]
    pub check_config: bool,

    /// Address to receive SIP on, like Kamailio's `listen=udp:IP:PORT`
    /// (IPv6 as udp:[::1]:5060). Repeatable; replaces server.listen.
    #[arg(long, value_name = "udp:IP:PORT")]
    pub listen: Vec<String>,

    /// A backend of the default set, like a dispatcher.list line
    /// `1 sip:HOST:PORT`. Repeatable; replaces the default set's
    /// destinations (creating set "default" when there is no file).
    #[arg(long = "backend", value_name = "sip:HOST[:PORT]")]
    pub backends: Vec<String>,

    /// Selection algorithm of the default set, like ds_select_dst's alg:
    /// a name or Kamailio number (the list is dispatch::algorithm's).
    #[arg(
        long,
        value_name = "NAME",
        help = format!(
            "Selection algorithm of the default set, like ds_select_dst's alg: \
             a name or Kamailio number: {SUPPORTED}"
        )
    )]
    pub algorithm: Option<String>,

    /// Worker threads, one pinned per CPU core (where Kamailio forks
    /// `children=` processes): a number, or auto for one per CPU.
    #[arg(long, value_name = "N|auto")]
    pub workers: Option<String>,

    /// Per-core I/O loop: uring (io_uring through glommio; fails to start
    /// where io_uring is blocked), portable (epoll + recvmmsg/sendmmsg, runs
    /// under Docker's default seccomp profile), or auto (logs the io_uring
    /// probe and runs portable, measured cheaper per call).
    #[arg(
        long,
        value_name = "DRIVER",
        value_parser = PossibleValuesParser::new(IoDriver::ALL.map(IoDriver::name))
    )]
    pub io_driver: Option<String>,

    /// stateful (the default; like t_relay(): transactions, 100 Trying,
    /// retransmissions, failover to the next destination) or stateless
    /// (like Kamailio's forward() with the dispatcher, no tm).
    #[arg(
        long,
        value_name = "MODE",
        value_parser = PossibleValuesParser::new(ProxyMode::ALL.map(ProxyMode::name))
    )]
    pub mode: Option<String>,

    /// Turn NAT traversal on (`[nat]` tunes it): detect UAs behind NAT,
    /// fix their Contact (alias), add Path to their REGISTERs and keep
    /// their NAT mappings open, like nathelper + path + nat_traversal.
    #[arg(long)]
    pub nat: bool,

    /// NAT keepalive: options, notify, crlf, zero (4 zero bytes) or off.
    #[arg(
        long,
        value_name = "KIND",
        value_parser = PossibleValuesParser::new(crate::nat::Keepalive::ALL.map(crate::nat::Keepalive::name))
    )]
    pub nat_keepalive: Option<String>,

    /// Address written in Via and Record-Route instead of the listen
    /// address, for NAT and containers, like Kamailio's
    /// `listen=... advertise HOST:PORT`.
    #[arg(long, value_name = "HOST[:PORT]")]
    pub advertise: Option<String>,

    /// Log output: human (text lines) or json (one object per line).
    #[arg(
        long,
        value_name = "FORMAT",
        value_parser = PossibleValuesParser::new(LogFormat::ALL.map(LogFormat::name))
    )]
    pub log_format: Option<String>,

    /// More logging, like raising Kamailio's `debug=`: -v debug, -vv trace
    /// (default info). Overrides log.level.
    #[arg(short, long, action = ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Less logging: -q warn, -qq error. Overrides log.level.
    #[arg(short, long, action = ArgAction::Count)]
    pub quiet: u8,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Talk to a running sipfront's admin API (like kamcmd dispatcher.*).
    Ctl(CtlArgs),
}

/// `sipfront ctl`: exit 0 on success, 1 when the API refuses, 2 when it
/// cannot be reached.
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct CtlArgs {
    /// Admin API address.
    #[arg(
        long,
        value_name = "URL",
        env = ENV_ADMIN_URL,
        default_value_t = format!("http://{DEFAULT_ADMIN_LISTEN}")
    )]
    pub admin: String,
    /// Bearer token (admin.token).
    #[arg(
        long,
        value_name = "TOKEN",
        env = ENV_ADMIN_TOKEN,
        hide_env_values = true
    )]
    pub token: Option<String>,
    #[command(subcommand)]
    pub action: CtlAction,
}

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum CtlAction {
    /// List destinations with state, probe results and forwarded counts
    /// (like `kamcmd dispatcher.list`).
    Backends,
    /// Set a destination's state: active, disabled or drain (like
    /// `kamcmd dispatcher.set_state`).
    Set {
        set: String,
        uri: String,
        #[arg(value_parser = ["active", "disabled", "drain"])]
        state: String,
    },
    /// Re-read the configuration (like SIGHUP).
    Reload,
    /// Counters as JSON.
    Stats,
    /// The NAT flows kept open with keepalives, per worker, as JSON
    /// (what nathelper's pinger would find in usrloc).
    Nat,
    /// The Prometheus page.
    Metrics,
    /// Liveness: exit 0 while every worker runs.
    Health,
    /// Readiness: exit 0 unless starting or draining.
    Ready,
}

impl CtlAction {
    pub fn to_action(&self) -> crate::admin::client::Action {
        use crate::admin::client::Action;
        match self {
            CtlAction::Backends => Action::Backends,
            CtlAction::Set { set, uri, state } => Action::Set {
                set: set.clone(),
                uri: uri.clone(),
                state: state.clone(),
            },
            CtlAction::Reload => Action::Reload,
            CtlAction::Stats => Action::Stats,
            CtlAction::Nat => Action::Nat,
            CtlAction::Metrics => Action::Metrics,
            CtlAction::Health => Action::Health,
            CtlAction::Ready => Action::Ready,
        }
    }
}

impl Cli {
    /// Parses the process arguments, exiting with clap's usage message on
    /// error (`Parser::parse` without importing the trait).
    pub fn parse_args() -> Cli {
        <Cli as Parser>::parse()
    }

    /// The log level -v/-q ask for, if any.
    pub fn log_level(&self) -> Option<&'static str> {
        match (self.verbose, self.quiet) {
            (0, 0) => None,
            (1, _) => Some("debug"),
            (v, _) if v >= 2 => Some("trace"),
            (_, 1) => Some("warn"),
            _ => Some("error"),
        }
    }

    /// The overrides [`crate::config::load`] applies over file and
    /// environment.
    pub fn overrides(&self) -> CliOverrides {
        CliOverrides {
            listen: self.listen.clone(),
            backends: self.backends.clone(),
            algorithm: self.algorithm.clone(),
            workers: self.workers.clone(),
            io_driver: self.io_driver.clone(),
            mode: self.mode.clone(),
            advertise: self.advertise.clone(),
            log_format: self.log_format.clone(),
            log_level: self.log_level().map(str::to_string),
            nat: self.nat,
            nat_keepalive: self.nat_keepalive.clone(),
        }
    }
}

impl From<&Cli> for CliOverrides {
    fn from(c: &Cli) -> Self {
        c.overrides()
    }
}

/// `--check-config`: loads and validates everything `cli` and `env` name,
/// writes a summary to `out` and returns 0, or writes the error
/// (`file:line:column: key: reason`) to `err` and returns 1.
pub fn check_config(
    cli: &Cli,
    env: &dyn Fn(&str) -> Option<String>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    match load(cli.config.as_deref(), &cli.overrides(), env) {
        Ok(cfg) => {
            let what = match &cfg.source {
                Some(p) => p.display().to_string(),
                None => "configuration (no config file)".into(),
            };
            let _ = writeln!(out, "{what}: configuration OK");
            let _ = write!(out, "{}", cfg.summary());
            0
        }
        Err(e) => {
            let _ = writeln!(err, "{e}");
            if matches!(e.location, Location::Defaults) {
                let _ = writeln!(
                    err,
                    "hint: give a config file with -c FILE, or at least --backend sip:HOST:PORT"
                );
            }
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(args).unwrap()
    }

    #[test]
    fn command_is_well_formed() {
        Cli::command().debug_assert();
        let help = Cli::command().render_long_help().to_string();
        for s in [
            "ds_select_dst",
            "kamailio -c",
            "listen=udp:IP:PORT",
            "SIPFRONT_BACKENDS",
        ] {
            assert!(help.contains(s), "help lacks {s:?}");
        }
        // Lists kept elsewhere are printed from there.
        let after = after_help();
        for var in ENV_VARS {
            assert!(after.contains(var), "help lacks {var}");
        }
        assert!(after.lines().all(|l| l.len() <= 100), "{after}");
        assert!(help.contains(&SUPPORTED.to_string()), "{help}");
        assert!(
            help.contains("[possible values: auto, uring, portable]"),
            "{help}"
        );
        assert!(
            help.contains("[possible values: stateless, stateful]"),
            "{help}"
        );
        assert!(!help.contains("not implemented"), "{help}");
    }

    #[test]
    fn ctl_defaults_to_the_default_admin_address() {
        let c = parse(&["sipfront", "ctl", "health"]);
        let Some(Command::Ctl(a)) = c.command else {
            panic!("no ctl")
        };
        if std::env::var_os(ENV_ADMIN_URL).is_none() {
            assert_eq!(a.admin, format!("http://{DEFAULT_ADMIN_LISTEN}"));
            assert_eq!(a.admin, "http://127.0.0.1:9090");
        }
    }

    #[test]
    fn ctl_subcommand() {
        let c = parse(&[
            "sipfront",
            "ctl",
            "--admin",
            "http://127.0.0.1:9999",
            "set",
            "pbx",
            "sip:10.0.0.5:5060",
            "drain",
        ]);
        let Some(Command::Ctl(a)) = c.command else {
            panic!("no ctl")
        };
        assert_eq!(a.admin, "http://127.0.0.1:9999");
        assert_eq!(
            a.action,
            CtlAction::Set {
                set: "pbx".into(),
                uri: "sip:10.0.0.5:5060".into(),
                state: "drain".into()
            }
        );
        assert!(Cli::try_parse_from(["sipfront", "ctl", "set", "a", "b", "up"]).is_err());
        assert!(parse(&["sipfront"]).command.is_none());
    }

    #[test]
    fn quick_start_flags() {
        let c = parse(&[
            "sipfront",
            "--listen",
            "udp:127.0.0.1:5060",
            "--backend",
            "sip:127.0.0.1:5070",
            "--backend",
            "sip:127.0.0.1:5080",
        ]);
        let o = c.overrides();
        assert_eq!(o.listen, ["udp:127.0.0.1:5060"]);
        assert_eq!(o.backends, ["sip:127.0.0.1:5070", "sip:127.0.0.1:5080"]);
        assert_eq!(o.log_level, None);
        assert!(!c.check_config);
        let cfg = crate::config::load(None, &o, &|_| None).unwrap();
        assert_eq!(cfg.server.listen[0].to_string(), "udp:127.0.0.1:5060");
        let set = cfg.default_set().unwrap();
        assert_eq!(set.name, "default");
        assert_eq!(set.destinations.len(), 2);
        assert_eq!(set.destinations[1].addr, "127.0.0.1:5080".parse().unwrap());
    }

    #[test]
    fn every_flag() {
        let c = parse(&[
            "sipfront",
            "-c",
            "/etc/sipfront.toml",
            "--check-config",
            "--algorithm",
            "4",
            "--workers",
            "auto",
            "--io-driver",
            "portable",
            "--mode",
            "stateful",
            "--advertise",
            "203.0.113.7:5060",
            "--log-format",
            "json",
            "-vv",
        ]);
        assert_eq!(c.config, Some(PathBuf::from("/etc/sipfront.toml")));
        assert!(c.check_config);
        let o = c.overrides();
        assert_eq!(o.algorithm.as_deref(), Some("4"));
        assert_eq!(o.workers.as_deref(), Some("auto"));
        assert_eq!(o.io_driver.as_deref(), Some("portable"));
        assert_eq!(o.mode.as_deref(), Some("stateful"));
        assert_eq!(o.advertise.as_deref(), Some("203.0.113.7:5060"));
        assert_eq!(o.log_format.as_deref(), Some("json"));
        assert_eq!(o.log_level.as_deref(), Some("trace"));
        assert_eq!(
            parse(&["sipfront", "-f", "x.toml"]).config,
            Some("x.toml".into())
        );
        assert_eq!(
            parse(&["sipfront", "--config=x.toml"]).config,
            Some("x.toml".into())
        );
    }

    #[test]
    fn verbosity() {
        assert_eq!(parse(&["sipfront", "-v"]).log_level(), Some("debug"));
        assert_eq!(
            parse(&["sipfront", "-v", "-v", "-v"]).log_level(),
            Some("trace")
        );
        assert_eq!(parse(&["sipfront", "-q"]).log_level(), Some("warn"));
        assert_eq!(parse(&["sipfront", "-qq"]).log_level(), Some("error"));
        assert_eq!(parse(&["sipfront"]).log_level(), None);
        assert!(Cli::try_parse_from(["sipfront", "-v", "-q"]).is_err());
    }

    #[test]
    fn bad_enum_flags_are_rejected_by_clap() {
        let e = Cli::try_parse_from(["sipfront", "--io-driver", "epoll"]).unwrap_err();
        assert!(e.to_string().contains("portable"), "{e}");
        assert!(Cli::try_parse_from(["sipfront", "--mode", "proxy"]).is_err());
        assert!(Cli::try_parse_from(["sipfront", "--log-format", "xml"]).is_err());
        assert!(Cli::try_parse_from(["sipfront", "--bogus"]).is_err());
    }

    #[test]
    fn bad_flag_values_name_the_flag() {
        let c = parse(&[
            "sipfront",
            "--backend",
            "sip:127.0.0.1:5070",
            "--workers",
            "0",
        ]);
        let e = crate::config::load(None, &c.overrides(), &|_| None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "flag --workers: workers must be >= 1 (or \"auto\")"
        );
        let c = parse(&[
            "sipfront",
            "--backend",
            "sip:127.0.0.1:5070",
            "--listen",
            "tcp:1.2.3.4:5060",
        ]);
        let e = crate::config::load(None, &c.overrides(), &|_| None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "flag --listen: \"tcp:1.2.3.4:5060\": transport tcp is not supported yet (only udp)"
        );
    }

    #[test]
    fn check_config_exit_codes() {
        let dir = std::env::temp_dir().join(format!("sipfront-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.toml");
        std::fs::write(
            &good,
            "[[backend_set]]\nname = \"pbx\"\n[[backend_set.destination]]\nuri = \"sip:10.0.0.5:5060\"\n",
        )
        .unwrap();
        let bad = dir.join("bad.toml");
        std::fs::write(
            &bad,
            "[[backend_set]]\nname = \"pbx\"\n[[backend_set.destination]]\nuri = \"sip:10.0.0.5:99999\"\n",
        )
        .unwrap();

        let (mut out, mut err) = (Vec::new(), Vec::new());
        let c = parse(&["sipfront", "-c", good.to_str().unwrap(), "--check-config"]);
        assert_eq!(check_config(&c, &|_| None, &mut out, &mut err), 0);
        let out = String::from_utf8(out).unwrap();
        assert!(out.contains("configuration OK"), "{out}");
        assert!(
            out.contains("set \"pbx\": algorithm call-id, 1 destination(s)"),
            "{out}"
        );
        assert!(out.contains("sip:10.0.0.5:5060 -> 10.0.0.5:5060"), "{out}");
        assert!(err.is_empty());

        let (mut out, mut err) = (Vec::new(), Vec::new());
        let c = parse(&["sipfront", "-c", bad.to_str().unwrap(), "--check-config"]);
        assert_eq!(check_config(&c, &|_| None, &mut out, &mut err), 1);
        let err = String::from_utf8(err).unwrap();
        assert_eq!(
            err,
            format!(
                "{}:4:7: backend_set[0].destination[0].uri: \"sip:10.0.0.5:99999\": port out of range (1..=65535)\n",
                bad.display()
            )
        );
        assert!(out.is_empty());

        // Nothing at all: no backends.
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(
            check_config(&parse(&["sipfront"]), &|_| None, &mut out, &mut err),
            1
        );
        let err = String::from_utf8(err).unwrap();
        assert!(
            err.starts_with("configuration: backend_set: no backend set"),
            "{err}"
        );
        assert!(err.contains("hint:"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
