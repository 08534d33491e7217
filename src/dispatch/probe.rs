//! The health state machine of one destination, sans-I/O: probe outcomes
//! and passive failure counts go in, state transitions (with their reason)
//! come out. The prober thread (`crate::admin::prober`) sends the OPTIONS
//! and keeps the clock; the admin API sets the administrative state.
//!
//! States, as in Kamailio's dispatcher (`docs/operations.md`):
//! - `active`: selectable; probed, and taken out after `down` consecutive
//!   failures (probe timeouts or rejected replies), or when live traffic
//!   reports `down` consecutive passive failures (timeouts, failover codes);
//! - `inactive`: not selectable, still probed (Kamailio's "probing"); back
//!   after `up` consecutive accepted replies;
//! - `disabled` and `drain`: set by an admin and never changed by probes
//!   (probes go on, so the probe state is known when the admin releases
//!   it). Both keep the destination out of selection; in-dialog requests
//!   still reach it because they are routed by Route/Request-URI.

use std::fmt;

/// What an admin asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Admin {
    /// Probes and passive signals decide.
    #[default]
    Auto,
    /// Out of selection until an admin sets it active again.
    Disabled,
    /// No new calls; in-dialog traffic goes on.
    Drain,
}

/// The state shown to operators and in metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Active,
    Inactive,
    Disabled,
    Drain,
}

impl State {
    pub const ALL: [State; 4] = [
        State::Active,
        State::Inactive,
        State::Disabled,
        State::Drain,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            State::Active => "active",
            State::Inactive => "inactive",
            State::Disabled => "disabled",
            State::Drain => "drain",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result of one probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A final reply whose code is accepted.
    Ok(u16),
    /// A final reply whose code is not accepted.
    Rejected(u16),
    /// No final reply within the probe timeout.
    Timeout,
    /// The probe could not be sent.
    SendError,
}

impl Outcome {
    /// Metric label values, in [`Outcome::index`] order.
    pub const LABELS: [&'static str; 4] = ["ok", "rejected", "timeout", "error"];

    pub fn index(&self) -> usize {
        match self {
            Outcome::Ok(_) => 0,
            Outcome::Rejected(_) => 1,
            Outcome::Timeout => 2,
            Outcome::SendError => 3,
        }
    }
}

/// Consecutive results needed to change state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thresholds {
    pub down: u32,
    pub up: u32,
}

/// A state change and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub from: State,
    pub to: State,
    pub reason: String,
}

/// The health of one destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DestHealth {
    /// What probes and passive signals say.
    up: bool,
    ok_run: u32,
    fail_run: u32,
    admin: Admin,
}

impl Default for DestHealth {
    fn default() -> Self {
        DestHealth::new()
    }
}

impl DestHealth {
    /// Active, as Kamailio's dispatcher starts a destination.
    pub fn new() -> DestHealth {
        DestHealth {
            up: true,
            ok_run: 0,
            fail_run: 0,
            admin: Admin::Auto,
        }
    }

    pub fn state(&self) -> State {
        match (self.admin, self.up) {
            (Admin::Disabled, _) => State::Disabled,
            (Admin::Drain, _) => State::Drain,
            (Admin::Auto, true) => State::Active,
            (Admin::Auto, false) => State::Inactive,
        }
    }

    /// May the dispatcher select it for a new call?
    pub fn selectable(&self) -> bool {
        self.state() == State::Active
    }

    /// Whether probes and passive signals see it alive (whatever the admin
    /// state).
    pub fn probe_up(&self) -> bool {
        self.up
    }

    pub fn admin(&self) -> Admin {
        self.admin
    }

    fn change(&mut self, up: bool, reason: String) -> Option<Transition> {
        let from = self.state();
        self.up = up;
        self.ok_run = 0;
        self.fail_run = 0;
        let to = self.state();
        (from != to).then_some(Transition { from, to, reason })
    }

    /// Applies one probe result.
    pub fn probe(&mut self, o: Outcome, t: Thresholds) -> Option<Transition> {
        match o {
            Outcome::Ok(code) => {
                self.fail_run = 0;
                self.ok_run = self.ok_run.saturating_add(1);
                if !self.up && self.ok_run >= t.up {
                    let n = self.ok_run;
                    return self.change(true, format!("{n} accepted probe replies (last {code})"));
                }
                None
            }
            o => {
                self.ok_run = 0;
                self.fail_run = self.fail_run.saturating_add(1);
                if self.up && self.fail_run >= t.down {
                    let what = match o {
                        Outcome::Rejected(c) => format!("last reply {c} not accepted"),
                        Outcome::Timeout => "last probe timed out".to_string(),
                        _ => "last probe could not be sent".to_string(),
                    };
                    let n = self.fail_run;
                    return self.change(false, format!("{n} failed probes ({what})"));
                }
                None
            }
        }
    }

    /// Applies the count of consecutive passive failures that live traffic
    /// reported (`HealthTable::failures`).
    pub fn passive(&mut self, failures: u32, t: Thresholds) -> Option<Transition> {
        if self.up && failures >= t.down {
            return self.change(
                false,
                format!(
                    "{failures} consecutive failures on live traffic (timeouts or failover codes)"
                ),
            );
        }
        None
    }

    /// Sets the administrative state. `Admin::Auto` ("active" in the API)
    /// hands the destination back to the probes, with its probe state as it
    /// is.
    pub fn set_admin(&mut self, a: Admin, who: &str) -> Option<Transition> {
        let from = self.state();
        self.admin = a;
        let to = self.state();
        (from != to).then(|| Transition {
            from,
            to,
            reason: format!("set by {who}"),
        })
    }

    /// Brings it back as alive, keeping the admin state (an admin who
    /// sets a destination active means it; without probes nothing else
    /// would).
    pub fn force_up(&mut self) {
        self.up = true;
        self.ok_run = 0;
        self.fail_run = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Thresholds = Thresholds { down: 3, up: 2 };

    #[test]
    fn goes_down_after_exactly_down_threshold_failures() {
        let mut h = DestHealth::new();
        assert_eq!(h.probe(Outcome::Timeout, T), None);
        assert_eq!(h.probe(Outcome::Rejected(500), T), None);
        let t = h
            .probe(Outcome::Timeout, T)
            .expect("down at the third failure");
        assert_eq!((t.from, t.to), (State::Active, State::Inactive));
        assert!(t.reason.contains("3 failed probes"), "{}", t.reason);
        assert!(!h.selectable());
        // Further failures change nothing.
        assert_eq!(h.probe(Outcome::Timeout, T), None);
    }

    #[test]
    fn a_success_resets_the_failure_run() {
        let mut h = DestHealth::new();
        h.probe(Outcome::Timeout, T);
        h.probe(Outcome::Timeout, T);
        h.probe(Outcome::Ok(200), T);
        assert_eq!(h.probe(Outcome::Timeout, T), None);
        assert_eq!(h.probe(Outcome::SendError, T), None);
        assert!(h.probe(Outcome::Timeout, T).is_some());
    }

    #[test]
    fn comes_back_after_up_threshold_successes() {
        let mut h = DestHealth::new();
        for _ in 0..3 {
            h.probe(Outcome::Timeout, T);
        }
        assert_eq!(h.state(), State::Inactive);
        assert_eq!(h.probe(Outcome::Ok(200), T), None);
        h.probe(Outcome::Timeout, T);
        assert_eq!(h.probe(Outcome::Ok(200), T), None, "the run restarted");
        let t = h.probe(Outcome::Ok(200), T).expect("up");
        assert_eq!((t.from, t.to), (State::Inactive, State::Active));
        assert!(h.selectable());
    }

    #[test]
    fn thresholds_of_one_flip_at_once() {
        let t1 = Thresholds { down: 1, up: 1 };
        let mut h = DestHealth::new();
        assert!(h.probe(Outcome::Rejected(404), t1).is_some());
        assert!(h.probe(Outcome::Ok(200), t1).is_some());
    }

    #[test]
    fn passive_failures_take_it_down_and_probes_bring_it_back() {
        let mut h = DestHealth::new();
        assert_eq!(h.passive(2, T), None);
        let t = h.passive(3, T).expect("down");
        assert!(t.reason.contains("live traffic"));
        assert_eq!(h.passive(10, T), None);
        h.probe(Outcome::Ok(200), T);
        assert!(h.probe(Outcome::Ok(200), T).is_some());
    }

    #[test]
    fn admin_states_are_not_overridden_by_probes() {
        let mut h = DestHealth::new();
        let t = h.set_admin(Admin::Disabled, "admin API").unwrap();
        assert_eq!((t.from, t.to), (State::Active, State::Disabled));
        for _ in 0..5 {
            assert_eq!(h.probe(Outcome::Timeout, T), None);
        }
        assert_eq!(h.state(), State::Disabled);
        assert!(!h.probe_up());
        assert_eq!(h.set_admin(Admin::Drain, "x").unwrap().to, State::Drain);
        assert!(!h.selectable());
        // Released: the probe state shows through.
        assert_eq!(h.set_admin(Admin::Auto, "x").unwrap().to, State::Inactive);
        h.probe(Outcome::Ok(200), T);
        h.probe(Outcome::Ok(200), T);
        assert_eq!(h.state(), State::Active);
        assert_eq!(h.set_admin(Admin::Auto, "x"), None);
    }

    #[test]
    fn outcome_labels_line_up() {
        for (o, l) in [
            (Outcome::Ok(200), "ok"),
            (Outcome::Rejected(503), "rejected"),
            (Outcome::Timeout, "timeout"),
            (Outcome::SendError, "error"),
        ] {
            assert_eq!(Outcome::LABELS[o.index()], l);
        }
    }
}
