//! Per-leg and per-worker counters, and the RTP receive statistics (RFC 3550
//! §6.4.1 / A.1 / A.8: extended highest sequence number, cumulative loss,
//! interarrival jitter) computed from RTP headers with `rtp-rs`.
//!
//! Each counter has exactly one writer, the media worker that owns the
//! leg; the control thread only reads (queries, idle timeouts). Single
//! writer means updates are a relaxed load and store (no locked
//! read-modify-write, no lock) and readers see a value at most one packet old.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Adds `n` to a single-writer counter.
#[inline]
pub fn bump(c: &AtomicU64, n: u64) {
    c.store(c.load(Relaxed).wrapping_add(n), Relaxed);
}

/// What one leg received (packets sent *by* the party this leg faces).
#[derive(Debug, Default)]
pub struct LegStats {
    /// RTP-port packets received and relayed or dropped.
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
    /// RTCP-port packets received.
    pub rtcp_packets: AtomicU64,
    pub rtcp_bytes: AtomicU64,
    /// Packets relayed to the other party (RTP and RTCP).
    pub relayed: AtomicU64,
    /// Packets dropped (wrong source, no destination, send failure).
    pub dropped: AtomicU64,
    /// Milliseconds since the process clock epoch of the last packet; 0 = none.
    pub last_packet_ms: AtomicU64,
    /// RFC 3550 A.3 expected packets, cumulative lost (may be negative with
    /// duplicates; stored as i64 bits), interarrival jitter (timestamp units).
    pub expected: AtomicU64,
    pub lost: AtomicU64,
    pub jitter: AtomicU64,
    pub max_jitter: AtomicU64,
    /// Packets on the RTP port that are not RTP (bad version, too short).
    pub rtp_errors: AtomicU64,
    pub ssrc_changes: AtomicU64,
    pub duplicates: AtomicU64,
}

impl LegStats {
    pub fn lost(&self) -> i64 {
        self.lost.load(Relaxed) as i64
    }

    pub fn last_packet(&self) -> u64 {
        self.last_packet_ms.load(Relaxed)
    }
}

/// Both legs of one stream: `legs[p]` faces party `p`.
#[derive(Debug, Default)]
pub struct StreamStats {
    pub legs: [LegStats; 2],
}

impl StreamStats {
    pub fn last_packet(&self) -> u64 {
        self.legs[0].last_packet().max(self.legs[1].last_packet())
    }
}

/// One worker's relay totals.
#[derive(Debug, Default)]
pub struct WorkerCounters {
    pub received: AtomicU64,
    pub relayed: AtomicU64,
    pub dropped_no_destination: AtomicU64,
    pub dropped_wrong_source: AtomicU64,
    pub dropped_send_error: AtomicU64,
    pub dropped_truncated: AtomicU64,
    pub dropped_unknown_socket: AtomicU64,
}

/// Process-wide sums of [`WorkerCounters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub received: u64,
    pub relayed: u64,
    pub dropped_no_destination: u64,
    pub dropped_wrong_source: u64,
    pub dropped_send_error: u64,
    pub dropped_truncated: u64,
    pub dropped_unknown_socket: u64,
}

impl Totals {
    pub fn sum<'a>(workers: impl IntoIterator<Item = &'a WorkerCounters>) -> Totals {
        let mut t = Totals::default();
        for w in workers {
            t.received += w.received.load(Relaxed);
            t.relayed += w.relayed.load(Relaxed);
            t.dropped_no_destination += w.dropped_no_destination.load(Relaxed);
            t.dropped_wrong_source += w.dropped_wrong_source.load(Relaxed);
            t.dropped_send_error += w.dropped_send_error.load(Relaxed);
            t.dropped_truncated += w.dropped_truncated.load(Relaxed);
            t.dropped_unknown_socket += w.dropped_unknown_socket.load(Relaxed);
        }
        t
    }

    pub fn dropped(&self) -> u64 {
        self.dropped_no_destination
            + self.dropped_wrong_source
            + self.dropped_send_error
            + self.dropped_truncated
            + self.dropped_unknown_socket
    }
}

/// RTP clock rate by payload type (RFC 3551 §6 static types; dynamic types
/// are assumed 8000 Hz, the common case for voice, so jitter of dynamic
/// wideband codecs is scaled accordingly).
pub fn clock_rate(pt: u8) -> u32 {
    match pt {
        10 | 11 => 44100,
        6 => 16000,
        16 => 11025,
        17 => 22050,
        14 | 25 | 26 | 28 | 31 | 32 | 33 | 34 => 90000,
        _ => 8000,
    }
}

const RTP_SEQ_MOD: u32 = 1 << 16;
const MAX_DROPOUT: u16 = 3000;
const MAX_MISORDER: u16 = 100;

/// Receive-side RTP statistics of one leg (worker-local state).
#[derive(Clone, Debug, Default)]
pub struct RtpTracker {
    started: bool,
    ssrc: u32,
    base_seq: u32,
    max_seq: u16,
    cycles: u32,
    received: u64,
    transit: i64,
    /// Jitter in 1/16 timestamp units (RFC 3550 A.8 integer form).
    jitter16: i64,
    max_jitter: u64,
}

/// What [`RtpTracker::on_packet`] saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RtpSeen {
    Rtp,
    /// RTCP multiplexed on the RTP port (RFC 5761 §4: PT 64–95 range).
    Rtcp,
    NotRtp,
}

impl RtpTracker {
    /// Updates from one packet received at `arrival_us` (microseconds on
    /// any monotonic clock) and publishes the results into `out`.
    pub fn on_packet(&mut self, pkt: &[u8], arrival_us: u64, out: &LegStats) -> RtpSeen {
        // RFC 5761 §4: RTCP packet types 200–204 show as PT 72–76 (M set).
        if let Some(&b) = pkt.get(1) {
            if (192..=223).contains(&b) && pkt.first().is_some_and(|v| v >> 6 == 2) {
                return RtpSeen::Rtcp;
            }
        }
        let Ok(r) = rtp_rs::RtpReader::new(pkt) else {
            bump(&out.rtp_errors, 1);
            return RtpSeen::NotRtp;
        };
        let seq: u16 = r.sequence_number().into();
        let ssrc = r.ssrc();
        let rate = u64::from(clock_rate(r.payload_type()));
        let arrival_ts = (arrival_us.wrapping_mul(rate) / 1_000_000) as i64;
        let transit = arrival_ts.wrapping_sub(i64::from(r.timestamp()));
        if !self.started || ssrc != self.ssrc {
            if self.started {
                bump(&out.ssrc_changes, 1);
            }
            *self = RtpTracker {
                started: true,
                ssrc,
                base_seq: u32::from(seq),
                max_seq: seq,
                cycles: 0,
                received: 1,
                transit,
                jitter16: 0,
                max_jitter: self.max_jitter,
            };
            self.publish(out);
            return RtpSeen::Rtp;
        }
        let delta = seq.wrapping_sub(self.max_seq);
        if delta == 0 {
            bump(&out.duplicates, 1);
        } else if delta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles = self.cycles.wrapping_add(RTP_SEQ_MOD);
            }
            self.max_seq = seq;
        } else if delta <= u16::MAX - MAX_MISORDER {
            // A large jump: treat as a restart of the sequence (RFC 3550 A.1
            // would wait for a second packet; a relay can afford to be brief).
            self.base_seq = u32::from(seq);
            self.max_seq = seq;
            self.cycles = 0;
            self.received = 0;
        }
        self.received += 1;
        // RFC 3550 A.8.
        let d = (transit - self.transit).abs();
        self.transit = transit;
        self.jitter16 += d - ((self.jitter16 + 8) >> 4);
        self.publish(out);
        RtpSeen::Rtp
    }

    fn extended_max(&self) -> u64 {
        u64::from(self.cycles) + u64::from(self.max_seq)
    }

    /// RFC 3550 A.3: expected = extended max − base + 1.
    pub fn expected(&self) -> u64 {
        (self.extended_max() + 1).saturating_sub(u64::from(self.base_seq))
    }

    pub fn lost(&self) -> i64 {
        self.expected() as i64 - self.received as i64
    }

    /// Jitter in timestamp units.
    pub fn jitter(&self) -> u64 {
        (self.jitter16.max(0) >> 4) as u64
    }

    fn publish(&mut self, out: &LegStats) {
        let j = self.jitter();
        self.max_jitter = self.max_jitter.max(j);
        out.expected.store(self.expected(), Relaxed);
        out.lost.store(self.lost() as u64, Relaxed);
        out.jitter.store(j, Relaxed);
        out.max_jitter.store(self.max_jitter, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(seq: u16, ts: u32, ssrc: u32) -> Vec<u8> {
        rtp_rs::RtpPacketBuilder::new()
            .payload_type(8)
            .sequence(seq.into())
            .timestamp(ts)
            .ssrc(ssrc)
            .payload(&[0u8; 160])
            .build()
            .unwrap()
    }

    // RFC 3550 A.3: loss = expected − received, across a sequence wrap.
    #[test]
    fn loss_across_wrap() {
        let out = LegStats::default();
        let mut t = RtpTracker::default();
        let mut seq = 65530u16;
        for i in 0..20u32 {
            if i != 7 && i != 8 {
                t.on_packet(&pkt(seq, i * 160, 1), u64::from(i) * 20_000, &out);
            }
            seq = seq.wrapping_add(1);
        }
        assert_eq!(t.expected(), 20);
        assert_eq!(t.lost(), 2);
        assert_eq!(out.lost(), 2);
        assert_eq!(out.expected.load(Relaxed), 20);
    }

    // RFC 3550 A.8: a perfectly paced stream has zero jitter; a 10 ms
    // wobble at 8 kHz gives a positive estimate.
    #[test]
    fn jitter() {
        let out = LegStats::default();
        let mut t = RtpTracker::default();
        for i in 0..50u32 {
            t.on_packet(&pkt(i as u16, i * 160, 9), u64::from(i) * 20_000, &out);
        }
        assert_eq!(t.jitter(), 0);
        for i in 50..100u32 {
            let wobble = if i % 2 == 0 { 10_000 } else { 0 };
            t.on_packet(
                &pkt(i as u16, i * 160, 9),
                u64::from(i) * 20_000 + wobble,
                &out,
            );
        }
        assert!(t.jitter() > 30, "{}", t.jitter());
        assert!(out.max_jitter.load(Relaxed) >= t.jitter());
    }

    // SSRC change restarts the statistics (RFC 3550 §8.2 new source).
    #[test]
    fn ssrc_change_and_not_rtp() {
        let out = LegStats::default();
        let mut t = RtpTracker::default();
        t.on_packet(&pkt(100, 0, 1), 0, &out);
        t.on_packet(&pkt(5, 0, 2), 0, &out);
        assert_eq!(out.ssrc_changes.load(Relaxed), 1);
        assert_eq!(t.expected(), 1);
        assert_eq!(t.on_packet(b"\x00\x01", 0, &out), RtpSeen::NotRtp);
        assert_eq!(out.rtp_errors.load(Relaxed), 1);
        // RTCP SR (PT 200) muxed on the RTP port.
        assert_eq!(t.on_packet(&[0x80, 200, 0, 6], 0, &out), RtpSeen::Rtcp);
    }
}
