//! NAT traversal at the edge, sans-I/O (DESIGN.md "The engine"): deciding
//! whether a UA is behind a NAT ([`detect`]), the edits that make the rest
//! of the network reach it through its NAT ([`fix`]: Contact alias or
//! rewrite, Path, `received`), the flow a URI names ([`flow`]), and the
//! table of NAT endpoints kept open with keepalives ([`table`],
//! [`keepalive`]). The proxy engine calls in here; nothing here touches a
//! socket. `docs/nat.md` is the user's side of this module.

pub mod detect;
pub mod fix;
pub mod flow;
pub mod keepalive;
pub mod table;

pub use detect::{Test, Tests};
pub use fix::ContactFix;
pub use flow::Flow;
pub use keepalive::Keepalive;
pub use table::{FlowInfo, FlowTable};

use std::str::FromStr;

/// What is done to a REGISTER from a UA behind NAT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegisterFix {
    /// A Path header naming sipfront with the flow (RFC 3327): incoming
    /// requests come back through this sipfront to the right flow.
    Path,
    /// `;received=sip:IP:PORT` inside each Contact URI (nathelper's
    /// `add_rcv_param`), for registrars without Path.
    Received,
    /// The Contact strategy of other requests (alias or rewrite).
    Contact,
}

impl RegisterFix {
    pub const ALL: [RegisterFix; 3] = [
        RegisterFix::Path,
        RegisterFix::Received,
        RegisterFix::Contact,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            RegisterFix::Path => "path",
            RegisterFix::Received => "received",
            RegisterFix::Contact => "contact",
        }
    }
}

impl FromStr for RegisterFix {
    type Err = String;
    fn from_str(s: &str) -> Result<RegisterFix, String> {
        let t = s.trim().to_ascii_lowercase();
        RegisterFix::ALL
            .into_iter()
            .find(|k| k.name() == t)
            .ok_or_else(|| format!("{s:?}: expected path, received or contact"))
    }
}

/// The Contact strategy as the config writes it: `alias`, `rewrite` or
/// `off`.
pub fn parse_contact_fix(s: &str) -> Result<Option<ContactFix>, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "alias" => Ok(Some(ContactFix::Alias)),
        "rewrite" => Ok(Some(ContactFix::Rewrite)),
        "off" => Ok(None),
        _ => Err(format!("{s:?}: expected alias, rewrite or off")),
    }
}

pub fn contact_fix_name(c: Option<ContactFix>) -> &'static str {
    match c {
        Some(ContactFix::Alias) => "alias",
        Some(ContactFix::Rewrite) => "rewrite",
        Some(ContactFix::Received) => "received",
        None => "off",
    }
}

// ---- defaults (documented once, in docs/configuration.md) ----

pub const DEFAULT_ENABLED: bool = false;
pub const DEFAULT_CONTACT: Option<ContactFix> = Some(ContactFix::Alias);
pub const DEFAULT_REGISTER: RegisterFix = RegisterFix::Path;
pub const DEFAULT_KEEPALIVE: Keepalive = Keepalive::Options;
/// Under the 30 s a Linux NAT (and many home routers) keeps an unanswered
/// UDP mapping.
pub const DEFAULT_KEEPALIVE_INTERVAL_MS: u64 = 20_000;
pub const DEFAULT_KEEPALIVE_FAILURES: u8 = 3;
pub const DEFAULT_KEEPALIVE_FROM: &str = "sip:keepalive@sipfront.invalid";
pub const DEFAULT_MAX_FLOWS: usize = 65_536;
pub const DEFAULT_DIALOG_TIMEOUT_MS: u64 = 7_200_000;

/// NAT settings (from `[nat]`; defaults and meaning in
/// docs/configuration.md).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NatConfig {
    pub enabled: bool,
    pub tests: Tests,
    pub contact: Option<ContactFix>,
    pub register: RegisterFix,
    pub keepalive: Keepalive,
    pub keepalive_interval_ms: u64,
    /// Unanswered SIP keepalives in a row that drop a flow.
    pub keepalive_failures: u8,
    pub keepalive_from: String,
    /// Flows one worker keeps at most.
    pub max_flows: usize,
    /// A dialog without BYE stops keeping its flow open after this long.
    pub dialog_timeout_ms: u64,
}

impl Default for NatConfig {
    fn default() -> Self {
        NatConfig {
            enabled: DEFAULT_ENABLED,
            tests: Tests::DEFAULT,
            contact: DEFAULT_CONTACT,
            register: DEFAULT_REGISTER,
            keepalive: DEFAULT_KEEPALIVE,
            keepalive_interval_ms: DEFAULT_KEEPALIVE_INTERVAL_MS,
            keepalive_failures: DEFAULT_KEEPALIVE_FAILURES,
            keepalive_from: DEFAULT_KEEPALIVE_FROM.to_string(),
            max_flows: DEFAULT_MAX_FLOWS,
            dialog_timeout_ms: DEFAULT_DIALOG_TIMEOUT_MS,
        }
    }
}

impl NatConfig {
    /// The effective settings in one line, for `--check-config`.
    pub fn summary(&self) -> String {
        if !self.enabled {
            return "nat: off (--nat or [nat] enabled = true turns it on)".to_string();
        }
        let keep = if self.keepalive == Keepalive::Off {
            "keepalive off".to_string()
        } else {
            format!(
                "keepalive {} every {} ms (dropped after {} unanswered), at most {} flows per worker",
                self.keepalive,
                self.keepalive_interval_ms,
                self.keepalive_failures,
                self.max_flows
            )
        };
        format!(
            "nat: on, tests {} (nat_uac_test {}), contact {}, register {}, {keep}",
            self.tests,
            self.tests.nathelper_flags(),
            contact_fix_name(self.contact),
            self.register.name()
        )
    }
}

/// Counters of NAT handling (per worker; summed for `/metrics`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NatStats {
    /// Messages found behind NAT, by the test that hit (one message can
    /// count under several tests).
    pub detected: [u64; Test::ALL.len()],
    /// Requests and responses found behind NAT.
    pub nated_requests: u64,
    pub nated_responses: u64,
    /// Contact values fixed, by strategy: alias, rewrite, received.
    pub contacts_aliased: u64,
    pub contacts_rewritten: u64,
    pub contacts_received: u64,
    pub paths_added: u64,
    /// Requests sent to the flow a URI named (alias, received, Path).
    pub flows_resolved: u64,
    /// Of those, sent to the endpoint the flow's contact moved to.
    pub flows_rebound: u64,
    pub keepalives_sent: u64,
    pub keepalives_answered: u64,
    /// Flows dropped after unanswered keepalives.
    pub flows_dead: u64,
    /// Flows nothing keeps any more (registration or dialogs over).
    pub flows_expired: u64,
    /// Flows not kept because the table was full.
    pub flows_refused: u64,
    /// Contacts that moved to another endpoint (the NAT rebound).
    pub contacts_moved: u64,
    /// Flows kept now (a gauge).
    pub flows: u64,
}

impl NatStats {
    pub fn merge(&mut self, o: &NatStats) {
        for (a, b) in self.detected.iter_mut().zip(o.detected) {
            *a += b;
        }
        for (a, b) in self.fields_mut().into_iter().zip(o.fields()) {
            *a += b.1;
        }
    }

    fn fields_mut(&mut self) -> [&mut u64; 15] {
        [
            &mut self.nated_requests,
            &mut self.nated_responses,
            &mut self.contacts_aliased,
            &mut self.contacts_rewritten,
            &mut self.contacts_received,
            &mut self.paths_added,
            &mut self.flows_resolved,
            &mut self.flows_rebound,
            &mut self.keepalives_sent,
            &mut self.keepalives_answered,
            &mut self.flows_dead,
            &mut self.flows_expired,
            &mut self.flows_refused,
            &mut self.contacts_moved,
            &mut self.flows,
        ]
    }

    /// Every counter but `detected`: its summary name, and value.
    pub fn fields(&self) -> [(&'static str, u64); 15] {
        [
            ("nat_requests", self.nated_requests),
            ("nat_responses", self.nated_responses),
            ("nat_contacts_aliased", self.contacts_aliased),
            ("nat_contacts_rewritten", self.contacts_rewritten),
            ("nat_contacts_received", self.contacts_received),
            ("nat_paths_added", self.paths_added),
            ("nat_flows_resolved", self.flows_resolved),
            ("nat_flows_rebound", self.flows_rebound),
            ("nat_keepalives_sent", self.keepalives_sent),
            ("nat_keepalives_answered", self.keepalives_answered),
            ("nat_flows_dead", self.flows_dead),
            ("nat_flows_expired", self.flows_expired),
            ("nat_flows_refused", self.flows_refused),
            ("nat_contacts_moved", self.contacts_moved),
            ("nat_flows", self.flows),
        ]
    }

    pub fn count_verdict(&mut self, hit: Tests) {
        for t in hit.iter() {
            self.detected[t as usize] += 1;
        }
    }
}
