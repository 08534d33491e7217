//! The selection algorithms a backend set can use, their config names
//! (kebab-case) and the Kamailio `ds_select_dst` numbers they correspond to.
//!
//! `FromStr` (and so the config loader) accepts the name or, for users
//! migrating a Kamailio `dispatcher` setup, the Kamailio number as a string
//! (`algorithm = "4"`); serde also accepts a bare integer (`algorithm = 4`).
//! Kamailio numbers sipfront does not implement are an error that says so and
//! lists the supported values.
//!
//! The names, the numbers and the list of supported values are written down
//! here only: the config keeps an [`Algorithm`], and its error messages and
//! `--help` print [`SUPPORTED`].

use core::fmt;
use core::str::FromStr;

/// How a backend set picks a destination for a request.
///
/// The hash algorithms (`call-id`, `from`, `to`, `ruri`, `ruri-user`,
/// `source-ip`) use weighted rendezvous hashing (see [`super::hash`]); the
/// others are per-worker (see [`super::select::Selector`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// Hash of the Call-ID. Kamailio 0. The safe choice for stateless
    /// affinity: every request of a dialog carries the same Call-ID.
    CallId,
    /// Hash of the From URI `user@host[:port]` (port only when not
    /// 5060/5061, as Kamailio does). Kamailio 1.
    From,
    /// Hash of the To URI, same key shape as `from`. Kamailio 2.
    To,
    /// Hash of the Request-URI `user@host[:port]`. Kamailio 3.
    Ruri,
    /// Hash of the Request-URI user part only. Kamailio 3 with the module
    /// parameter `flags=1`.
    RuriUser,
    /// Next active destination, per worker. Kamailio 4.
    RoundRobin,
    /// Uniformly random active destination. Kamailio 6.
    Random,
    /// Serial: the lowest `priority` value first, list order among equals.
    /// Kamailio 8.
    Priority,
    /// Random, proportional to `weight` among the active destinations.
    /// Kamailio 9 (also accepted: 11, whose renormalisation over the active
    /// destinations is what this does).
    Weighted,
    /// Hash of the source IP address of the request. Kamailio has no number
    /// for this (its closest is 7, a hash over a pseudo-variable such as
    /// `$si`).
    SourceIp,
    /// SRV-style: the lowest `priority` tier that has an active destination,
    /// weighted random inside the tier. Kamailio 15.
    PriorityWeighted,
}

impl Algorithm {
    /// Every algorithm, in documentation order.
    pub const ALL: [Algorithm; 11] = [
        Algorithm::CallId,
        Algorithm::From,
        Algorithm::To,
        Algorithm::Ruri,
        Algorithm::RuriUser,
        Algorithm::RoundRobin,
        Algorithm::Random,
        Algorithm::Priority,
        Algorithm::Weighted,
        Algorithm::SourceIp,
        Algorithm::PriorityWeighted,
    ];

    /// The config name.
    pub const fn name(self) -> &'static str {
        match self {
            Algorithm::CallId => "call-id",
            Algorithm::From => "from",
            Algorithm::To => "to",
            Algorithm::Ruri => "ruri",
            Algorithm::RuriUser => "ruri-user",
            Algorithm::RoundRobin => "round-robin",
            Algorithm::Random => "random",
            Algorithm::Priority => "priority",
            Algorithm::Weighted => "weighted",
            Algorithm::SourceIp => "source-ip",
            Algorithm::PriorityWeighted => "priority-weighted",
        }
    }

    /// The Kamailio `ds_select_dst` number that selects this algorithm
    /// ([`KAMAILIO`]); `None` for `ruri-user` (Kamailio's 3 with the module
    /// parameter `flags=1`) and `source-ip`.
    pub fn kamailio(self) -> Option<u64> {
        self.kamailio_numbers().next()
    }

    /// Every Kamailio number that selects this algorithm, in [`KAMAILIO`]
    /// order (`weighted`: 9 and 11).
    pub fn kamailio_numbers(self) -> impl Iterator<Item = u64> {
        KAMAILIO
            .into_iter()
            .filter(move |&(_, a)| a == self)
            .map(|(n, _)| n)
    }

    /// The algorithm for a Kamailio `ds_select_dst` number.
    pub fn from_kamailio(n: u64) -> Result<Algorithm, UnknownAlgorithm> {
        KAMAILIO
            .into_iter()
            .find(|&(k, _)| k == n)
            .map(|(_, a)| a)
            .ok_or(UnknownAlgorithm::Kamailio(n))
    }

    /// True for the algorithms that hash a request field (rendezvous
    /// hashing): the same input always picks the same active destination,
    /// on every worker and across restarts.
    pub const fn is_hash(self) -> bool {
        matches!(
            self,
            Algorithm::CallId
                | Algorithm::From
                | Algorithm::To
                | Algorithm::Ruri
                | Algorithm::RuriUser
                | Algorithm::SourceIp
        )
    }
}

/// The Kamailio `ds_select_dst` numbers sipfront accepts and the algorithm
/// each selects: the one table the parser, [`Algorithm::kamailio`] and the
/// list of [`SUPPORTED`] values read. 11 (relative weights, `rweight`) is
/// what `weighted` does with its weights; `ruri-user` and `source-ip` have
/// no number of their own.
pub const KAMAILIO: [(u64, Algorithm); 10] = [
    (0, Algorithm::CallId),
    (1, Algorithm::From),
    (2, Algorithm::To),
    (3, Algorithm::Ruri),
    (4, Algorithm::RoundRobin),
    (6, Algorithm::Random),
    (8, Algorithm::Priority),
    (9, Algorithm::Weighted),
    (11, Algorithm::Weighted),
    (15, Algorithm::PriorityWeighted),
];

/// The Kamailio numbers sipfront does not implement, with what Kamailio
/// does for them (named in the error message).
pub const KAMAILIO_UNSUPPORTED: [(u64, &str); 7] = [
    (5, "auth username hash"),
    (7, "hash over a pseudo-variable"),
    (10, "call load"),
    (12, "parallel forking"),
    (13, "latency"),
    (14, "round robin/serial"),
    (64, "overload control"),
];

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The supported values as error messages and `--help` list them, built
/// from [`Algorithm::ALL`] and [`KAMAILIO`]: `call-id (0), from (1), ...,
/// ruri-user, ..., weighted (9 or 11), source-ip, priority-weighted (15)`.
#[derive(Clone, Copy, Debug)]
pub struct Supported;

/// See [`Supported`].
pub const SUPPORTED: Supported = Supported;

impl fmt::Display for Supported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in Algorithm::ALL.into_iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(a.name())?;
            for (j, n) in a.kamailio_numbers().enumerate() {
                f.write_str(if j == 0 { " (" } else { " or " })?;
                write!(f, "{n}")?;
            }
            if a.kamailio().is_some() {
                f.write_str(")")?;
            }
        }
        Ok(())
    }
}

/// An algorithm name or number that sipfront does not know or implement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UnknownAlgorithm {
    /// A Kamailio number that is not in [`KAMAILIO`].
    Kamailio(u64),
    /// Neither a number nor the name of an algorithm; as given.
    Name(String),
}

impl fmt::Display for UnknownAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnknownAlgorithm::Kamailio(n) => {
                write!(f, "Kamailio algorithm {n}")?;
                if let Some((_, what)) = KAMAILIO_UNSUPPORTED.iter().find(|(k, _)| k == n) {
                    write!(f, " ({what})")?;
                }
                write!(f, " is not supported; supported: {SUPPORTED}")
            }
            UnknownAlgorithm::Name(s) => {
                write!(f, "unknown algorithm {s:?}; expected one of {SUPPORTED}")
            }
        }
    }
}

impl std::error::Error for UnknownAlgorithm {}

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    /// A name (ASCII case ignored) or a Kamailio number.
    fn from_str(s: &str) -> Result<Algorithm, UnknownAlgorithm> {
        let t = s.trim();
        if let Ok(n) = t.parse::<u64>() {
            return Algorithm::from_kamailio(n);
        }
        Algorithm::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(t))
            .ok_or_else(|| UnknownAlgorithm::Name(s.to_owned()))
    }
}

impl serde::Serialize for Algorithm {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Algorithm {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Algorithm, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Algorithm;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a dispatch algorithm: {SUPPORTED}")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Algorithm, E> {
                v.parse().map_err(E::custom)
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Algorithm, E> {
                Algorithm::from_kamailio(v).map_err(E::custom)
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Algorithm, E> {
                match u64::try_from(v) {
                    Ok(n) => self.visit_u64(n),
                    Err(_) => Err(E::custom(UnknownAlgorithm::Name(v.to_string()))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_from_str() {
        for a in Algorithm::ALL {
            assert_eq!(a.name().parse::<Algorithm>(), Ok(a));
            assert_eq!(a.to_string(), a.name());
        }
        assert_eq!(
            "Round-Robin".parse::<Algorithm>(),
            Ok(Algorithm::RoundRobin)
        );
    }

    #[test]
    fn kamailio_ds_select_dst_numbers_are_accepted_as_strings() {
        let table = [
            ("0", Algorithm::CallId),
            ("1", Algorithm::From),
            ("2", Algorithm::To),
            ("3", Algorithm::Ruri),
            ("4", Algorithm::RoundRobin),
            ("6", Algorithm::Random),
            ("8", Algorithm::Priority),
            ("9", Algorithm::Weighted),
            ("11", Algorithm::Weighted),
            ("15", Algorithm::PriorityWeighted),
        ];
        for (s, a) in table {
            assert_eq!(s.parse::<Algorithm>(), Ok(a), "{s}");
        }
        for a in Algorithm::ALL {
            for n in a.kamailio_numbers() {
                assert_eq!(Algorithm::from_kamailio(n), Ok(a), "{n}");
            }
        }
        assert_eq!(Algorithm::Weighted.kamailio(), Some(9));
        assert_eq!(Algorithm::RuriUser.kamailio(), None);
        assert_eq!(Algorithm::SourceIp.kamailio(), None);
    }

    #[test]
    fn supported_list_names_every_algorithm_with_its_numbers() {
        assert_eq!(
            SUPPORTED.to_string(),
            "call-id (0), from (1), to (2), ruri (3), ruri-user, round-robin (4), \
             random (6), priority (8), weighted (9 or 11), source-ip, priority-weighted (15)"
        );
        for (n, _) in KAMAILIO_UNSUPPORTED {
            assert!(
                KAMAILIO.iter().all(|&(k, _)| k != n),
                "{n} is in both tables"
            );
        }
    }

    #[test]
    fn unimplemented_kamailio_numbers_name_the_supported_ones() {
        for n in ["5", "7", "10", "12", "13", "14", "64", "99"] {
            let e = n.parse::<Algorithm>().unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains("not supported"), "{msg}");
            assert!(msg.contains("round-robin (4)"), "{msg}");
        }
        let e = "10".parse::<Algorithm>().unwrap_err().to_string();
        assert!(e.contains("call load"), "{e}");
        assert_eq!(
            "10".parse::<Algorithm>().unwrap_err().to_string(),
            format!("Kamailio algorithm 10 (call load) is not supported; supported: {SUPPORTED}")
        );
        assert_eq!(
            "99".parse::<Algorithm>().unwrap_err().to_string(),
            format!("Kamailio algorithm 99 is not supported; supported: {SUPPORTED}")
        );
        assert_eq!(
            " hash".parse::<Algorithm>().unwrap_err().to_string(),
            format!("unknown algorithm \" hash\"; expected one of {SUPPORTED}")
        );
        assert!("".parse::<Algorithm>().is_err());
        assert!("99999999999999999999999".parse::<Algorithm>().is_err());
    }

    #[test]
    fn serde_accepts_names_and_numbers() {
        use serde::de::value::{Error, I64Deserializer, StrDeserializer, U64Deserializer};
        use serde::de::IntoDeserializer;
        use serde::Deserialize;
        let d: StrDeserializer<Error> = "priority-weighted".into_deserializer();
        assert_eq!(Algorithm::deserialize(d), Ok(Algorithm::PriorityWeighted));
        let d: StrDeserializer<Error> = "4".into_deserializer();
        assert_eq!(Algorithm::deserialize(d), Ok(Algorithm::RoundRobin));
        let d: U64Deserializer<Error> = 0u64.into_deserializer();
        assert_eq!(Algorithm::deserialize(d), Ok(Algorithm::CallId));
        let d: I64Deserializer<Error> = (-1i64).into_deserializer();
        assert!(Algorithm::deserialize(d).is_err());
        let d: U64Deserializer<Error> = 10u64.into_deserializer();
        assert!(Algorithm::deserialize(d).is_err());
    }

    #[test]
    fn hash_algorithms_are_flagged() {
        let hashes: Vec<_> = Algorithm::ALL.into_iter().filter(|a| a.is_hash()).collect();
        assert_eq!(
            hashes,
            [
                Algorithm::CallId,
                Algorithm::From,
                Algorithm::To,
                Algorithm::Ruri,
                Algorithm::RuriUser,
                Algorithm::SourceIp
            ]
        );
    }
}
