//! Interop with Debian's Kamailio 5.6 as the real control client.
//!
//! SIPp UAC -> Kamailio (`kamailio/relay.cfg`) -> SIPp UAS, one call, with
//! Kamailio's `rtpengine` module (ng protocol) or its `rtpproxy` module
//! (classic protocol) pointed at the relay under test. The SIPp scenarios
//! write down the media address each side received in SDP; the test then
//! plays RTP from plain UDP sockets standing at the addresses the two SDPs
//! offered, and checks:
//! * the SDP each side received carries the relay's address and a port of its
//!   media range, not the other party's;
//! * RTP from the caller reaches the callee through the relay, and the
//!   callee's reaches the caller, byte-exact, from the relay port the receiver
//!   itself sends to (symmetric RTP);
//! * the call ends cleanly (Kamailio's BYE-time delete is answered: SIPp sees
//!   its 200) and, for sipfront-rtpproxy, the relay exits 0 on SIGTERM.
//!
//! The `reference_rtpengine_*` tests run the same against Debian's rtpengine
//! (`--table=-1`, userspace), which keeps the checks honest. Ports (picked
//! free at run time, since other sessions run these tests on the same
//! machine): SIP in 41000-41999, relay control ephemeral, relay media
//! 48000-48499, parties in 49000-49499.

#[path = "kamailio/support.rs"]
mod support;

use std::fs;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};
use support::*;

/// SIP ports of Kamailio and the two SIPps: picked free in this range.
const SIP_PORTS: std::ops::RangeInclusive<u16> = 41000..=41999;
/// The relay's media ports.
const MEDIA: (u16, u16) = (48000, 48499);
/// The test's RTP parties.
const PARTIES: std::ops::RangeInclusive<u16> = 49000..=49499;

/// The SIP side of one test.
#[derive(Clone, Copy)]
struct Sip {
    kamailio: u16,
    uas: u16,
    uac: u16,
}

fn kamailio_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/kamailio")
}

#[derive(Clone, Copy, PartialEq)]
enum Proto {
    Ng,
    Classic,
}

fn start_kamailio(dir: &TempDir, proto: Proto, relay: RelayPorts, sip: Sip) -> Proc {
    let cfg = kamailio_dir().join("relay.cfg");
    let sock = match proto {
        Proto::Ng => relay.ng,
        Proto::Classic => relay.classic,
    };
    let mut args = vec![
        "-f".to_string(),
        cfg.display().to_string(),
        "-A".into(),
        format!("RELAY_SOCK=\"udp:127.0.0.1:{sock}\""),
        "-A".into(),
        format!("UAS_URI=\"sip:127.0.0.1:{}\"", sip.uas),
        "-l".into(),
        format!("udp:127.0.0.1:{}", sip.kamailio),
    ];
    if proto == Proto::Ng {
        args.extend(["-A".into(), "WITH_NG".into()]);
    }
    let check = Command::new("kamailio")
        .arg("-c")
        .args(&args)
        .output()
        .expect("kamailio -c");
    assert!(
        check.status.success(),
        "kamailio -c rejects relay.cfg:\n{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let run = dir.path("kamailio-run");
    fs::create_dir_all(&run).expect("run dir");
    let mut c = Command::new("kamailio");
    c.args(["-DD", "-E", "-m", "32", "-M", "8"])
        .args(&args)
        .arg("-P")
        .arg(run.join("kamailio.pid"))
        .arg("-Y")
        .arg(&run)
        .arg("-w")
        .arg(&run);
    let mut k = Proc::spawn("kamailio", &mut c, dir.path("kamailio.log"));
    // The module's child probes the relay (ping / V+VF) as it starts; a
    // relay that fails the probe is disabled and the call would fail later,
    // less clearly. Wait for the module's own verdict.
    k.wait_for_log("found, support for it enabled", 10);
    k
}

fn read_media(file: &PathBuf, who: &str, secs: u64) -> SocketAddrV4 {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let text = fs::read_to_string(file).unwrap_or_default();
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() == 3 && f[0] == who {
                let ip: Ipv4Addr = f[1].parse().expect("address");
                return SocketAddrV4::new(ip, f[2].parse().expect("port"));
            }
        }
        assert!(
            Instant::now() < deadline,
            "no '{who}' media line in {}: {text:?}",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn call_through_kamailio(proto: Proto, kind: Kind) {
    let _serial = serial();
    if !require(&["kamailio", "sipp"]) || !require_relay(kind) {
        return;
    }
    let name = format!(
        "interop-{}-{kind:?}",
        match proto {
            Proto::Ng => "ng",
            Proto::Classic => "classic",
        }
    );
    let dir = TempDir::new(&name);
    let ports = RelayPorts::pick(MEDIA.0, MEDIA.1);
    let sip = Sip {
        kamailio: free_port(SIP_PORTS),
        uas: free_port(SIP_PORTS),
        uac: free_port(SIP_PORTS),
    };
    let mut relay = start_relay(&dir, kind, ports, false);
    let caller = party(PARTIES);
    let callee = party(PARTIES);
    let caller_media = caller.local_addr().expect("addr").port();
    let callee_media = callee.local_addr().expect("addr").port();
    let _kamailio = start_kamailio(&dir, proto, ports, sip);
    let media_file = dir.path("media.txt");
    let sipp_common = |rtp_port: u16| {
        let mut c = Command::new("sipp");
        c.args([
            "-i",
            "127.0.0.1",
            "-nostdin",
            "-timeout",
            "30",
            "-key",
            "rtp_ip",
            "127.0.0.1",
        ])
        .args(["-key", "rtp_port", &rtp_port.to_string()])
        .args(["-key", "media_file", &media_file.display().to_string()])
        .current_dir(&dir.0);
        c
    };
    let mut uas = sipp_common(callee_media);
    uas.arg("-sf").arg(kamailio_dir().join("uas.xml")).args([
        "-p",
        &sip.uas.to_string(),
        "-m",
        "1",
    ]);
    let mut uas = Proc::spawn("sipp uas", &mut uas, dir.path("uas.log"));
    std::thread::sleep(Duration::from_millis(300));
    // The scenario name picks relay.cfg's default flags: what Kamailio sends
    // with rtpengine_offer("replace-origin replace-session-connection") or a
    // plain rtpproxy_offer().
    let scenario = match proto {
        Proto::Ng => "ngbasic",
        Proto::Classic => "clbasic",
    };
    let mut uac = sipp_common(caller_media);
    uac.arg("-sf")
        .arg(kamailio_dir().join("uac.xml"))
        .args([
            "-s",
            scenario,
            "-p",
            &sip.uac.to_string(),
            "-m",
            "1",
            "-d",
            "2500",
        ])
        .arg(format!("127.0.0.1:{}", sip.kamailio));
    let mut uac = Proc::spawn("sipp uac", &mut uac, dir.path("uac.log"));

    // Where each side was told to send: the relay's address and ports.
    let to_relay_from_callee = read_media(&media_file, "callee", 10);
    let to_relay_from_caller = read_media(&media_file, "caller", 10);
    for (who, a) in [
        ("callee (INVITE)", to_relay_from_callee),
        ("caller (200 OK)", to_relay_from_caller),
    ] {
        assert_eq!(*a.ip(), Ipv4Addr::LOCALHOST, "{who} SDP address");
        assert!(
            (ports.media_low..=ports.media_high).contains(&a.port()),
            "the SDP the {who} received names port {}, not one of the relay's {}-{}",
            a.port(),
            ports.media_low,
            ports.media_high
        );
    }
    assert_ne!(to_relay_from_callee.port(), to_relay_from_caller.port());

    // Both directions, each from the socket its SDP named.
    stream_through(
        "caller -> callee",
        &caller,
        to_relay_from_caller,
        &callee,
        to_relay_from_callee,
        0x0a0a_0001,
        20,
    );
    stream_through(
        "callee -> caller",
        &callee,
        to_relay_from_callee,
        &caller,
        to_relay_from_caller,
        0x0b0b_0002,
        20,
    );

    let st = uac.wait_exit(20);
    assert!(st.success(), "SIPp UAC failed ({st}):\n{}", uac.output());
    let st = uas.wait_exit(10);
    assert!(st.success(), "SIPp UAS failed ({st}):\n{}", uas.output());

    if kind == Kind::Sipfront {
        let st = relay.terminate().expect("relay was running");
        assert!(
            st.success(),
            "sipfront-rtpproxy exited {st} on SIGTERM:\n{}",
            relay.output()
        );
    }
}

#[test]
fn kamailio_rtpengine_module_ng() {
    call_through_kamailio(Proto::Ng, Kind::Sipfront);
}

#[test]
fn kamailio_rtpproxy_module_classic() {
    call_through_kamailio(Proto::Classic, Kind::Sipfront);
}

#[test]
fn reference_rtpengine_ng() {
    call_through_kamailio(Proto::Ng, Kind::Rtpengine);
}

#[test]
fn reference_rtpengine_classic() {
    call_through_kamailio(Proto::Classic, Kind::Rtpengine);
}
