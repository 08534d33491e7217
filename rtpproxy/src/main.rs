//! `sipfront-rtpproxy`: command line, logging, signals; the work is in
//! [`sipfront_rtpproxy::server`].

use std::net::IpAddr;
use std::os::fd::RawFd;
use std::process::ExitCode;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use clap::Parser;
use sipfront_rtpproxy::server::{self, ControlAddr, ServerConfig};
use sipfront_rtpproxy::session::LatchMode;

/// Media relay for sipfront, driven by the classic rtpproxy protocol
/// (Kamailio/OpenSIPS `rtpproxy` modules) and rtpengine's ng protocol
/// (Kamailio `rtpengine` module).
#[derive(Parser, Debug)]
#[command(name = "sipfront-rtpproxy", version)]
struct Cli {
    /// ng control listener, udp:IP:PORT (repeatable)
    #[arg(long = "ng", value_name = "udp:IP:PORT", value_parser = server::parse_udp)]
    ng: Vec<std::net::SocketAddr>,
    /// classic rtpproxy control listener, udp:IP:PORT or unix:/path (repeatable)
    #[arg(long = "control", value_name = "udp:IP:PORT|unix:/path")]
    control: Vec<ControlAddr>,
    /// address media sockets bind to
    #[arg(long = "media-ip", default_value = "127.0.0.1")]
    media_ip: IpAddr,
    /// address written into SDP and U/L replies (default: media-ip)
    #[arg(long = "advertise-ip")]
    advertise_ip: Option<IpAddr>,
    /// media port range; RTP on even ports, RTCP = RTP + 1
    #[arg(long = "ports", value_name = "LOW-HIGH", default_value = "30000-39999", value_parser = server::parse_ports)]
    ports: (u16, u16),
    /// media worker threads (default: number of CPUs)
    #[arg(long = "workers")]
    workers: Option<usize>,
    /// most concurrent sessions; beyond it both protocols answer an error
    #[arg(long = "max-sessions", default_value_t = 10000)]
    max_sessions: usize,
    /// seconds without media in either direction before a session ends
    #[arg(long = "session-timeout", value_name = "SECS", default_value_t = 60)]
    session_timeout: u64,
    /// seconds an offer may wait for its answer
    #[arg(long = "offer-timeout", value_name = "SECS", default_value_t = 30)]
    offer_timeout: u64,
    /// auto: latch to the first packet's source; strict: only from the signalled IP
    #[arg(long = "latch", default_value = "auto", value_parser = parse_latch)]
    latch: LatchMode,
    /// log level (error, warn, info, debug, trace)
    #[arg(long = "log-level", default_value = "info")]
    log_level: String,
}

fn parse_latch(s: &str) -> Result<LatchMode, String> {
    s.parse()
}

static STOP_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(_: libc::c_int) {
    let fd = STOP_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        let one: u64 = 1;
        // SAFETY: write(2) is async-signal-safe; 8 bytes from a valid u64.
        unsafe {
            libc::write(fd, (&one as *const u64).cast(), 8);
        }
    }
}

fn install_signals() -> Result<RawFd, String> {
    // SAFETY: eventfd and sigaction with a handler that only calls write(2).
    unsafe {
        let fd = libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC);
        if fd < 0 {
            return Err(format!("eventfd: {}", std::io::Error::last_os_error()));
        }
        STOP_FD.store(fd, Ordering::Relaxed);
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as *const () as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        for sig in [libc::SIGTERM, libc::SIGINT] {
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        Ok(fd)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    if cli.ng.is_empty() && cli.control.is_empty() {
        tracing::warn!("no --ng or --control listener given: nothing can create sessions");
    }
    if cli.advertise_ip.unwrap_or(cli.media_ip).is_unspecified() {
        tracing::warn!(
            "--media-ip is a wildcard and no --advertise-ip is given: U/L replies carry no address and SDP gets an unspecified one"
        );
    }
    let cfg = ServerConfig {
        ng: cli.ng,
        control: cli.control,
        media_ip: cli.media_ip,
        advertise_ip: cli.advertise_ip.unwrap_or(cli.media_ip),
        ports: cli.ports,
        workers: cli
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1),
        max_sessions: cli.max_sessions,
        session_timeout: Duration::from_secs(cli.session_timeout),
        offer_timeout: Duration::from_secs(cli.offer_timeout),
        latch: cli.latch,
        // Thread per core: pin worker k to CPU k when there are enough CPUs.
        pin: cli
            .workers
            .is_none_or(|w| w <= std::thread::available_parallelism().map_or(1, |n| n.get())),
    };
    let stop = match install_signals() {
        Ok(fd) => fd,
        Err(e) => {
            eprintln!("sipfront-rtpproxy: {e}");
            return ExitCode::FAILURE;
        }
    };
    match server::run(&cfg, stop) {
        Ok(s) => {
            let r = s.relay;
            tracing::info!(
                sessions_created = s.sessions_created,
                sessions_closed_at_exit = s.sessions_closed_at_exit,
                offer_timeouts = s.offer_timeouts,
                media_timeouts = s.media_timeouts,
                packets_received = r.received,
                packets_relayed = r.relayed,
                dropped_no_destination = r.dropped_no_destination,
                dropped_wrong_source = r.dropped_wrong_source,
                dropped_send_error = r.dropped_send_error,
                dropped_truncated = r.dropped_truncated,
                "final counters"
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("sipfront-rtpproxy: {e}");
            ExitCode::FAILURE
        }
    }
}
