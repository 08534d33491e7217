//! The `sipfront` binary: flags and config, logging, the workers, signals.

use clap::Parser;
use sipfront::admin::{self, monitor::Monitor};
use sipfront::cli::{check_config, Cli, Command};
use sipfront::{app, config, runtime};
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn init_logging(format: config::LogFormat, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(config::schema::DEFAULT_LOG_LEVEL));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        config::LogFormat::Json => b.json().init(),
        config::LogFormat::Human => b.init(),
    }
}

/// The signal set the main thread waits for.
fn signal_set() -> libc::sigset_t {
    // SAFETY: a zeroed sigset_t is filled by sigemptyset.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// The next signal within `d`, if any.
fn wait_signal_for(d: Duration) -> Option<i32> {
    let set = signal_set();
    let ts = libc::timespec {
        tv_sec: d.as_secs() as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    };
    // SAFETY: sigtimedwait on a set built here; no siginfo wanted.
    let s = unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &ts) };
    (s > 0).then_some(s)
}

/// When live traffic was last seen: a response relayed (calls show
/// through their responses, in-dialog BYEs included) or a new transaction.
/// Requests alone do not count: the ACKs of the 503s a drain sends are
/// forwarded too. The drain also waits for `transactions_pending` (not
/// for every live entry: completed ones stay in the table up to 64×T1 only
/// to absorb retransmissions). The main
/// thread samples the published counters every 250 ms, so a drain knows
/// how long it has been quiet.
struct Activity {
    responses: u64,
    transactions: u64,
    last: Instant,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            responses: 0,
            transactions: 0,
            last: Instant::now(),
        }
    }

    /// Samples the counters; returns the transactions still waiting for a
    /// final answer (stateful mode).
    fn sample(&mut self, rt: &runtime::Runtime) -> u64 {
        let s = rt.stats();
        if s.responses_forwarded != self.responses || s.transactions_total != self.transactions {
            self.last = Instant::now();
        }
        self.responses = s.responses_forwarded;
        self.transactions = s.transactions_total;
        s.transactions_pending
    }
}

/// Graceful drain (docs/operations.md): new dialogs get 503, readiness
/// is false; returns once no transaction waits for a final answer and
/// nothing has been relayed for `quiet_ms` (counted from before the
/// drain), when `grace_ms` is over, or at a second SIGTERM/SIGINT. SIGHUP
/// still reloads.
fn drain(rt: &runtime::Runtime, control: &admin::Control, activity: &mut Activity) {
    let d = control.drain_config();
    rt.start_drain();
    let started = Instant::now();
    let grace = Duration::from_millis(d.grace_ms);
    let quiet = Duration::from_millis(d.quiet_ms);
    // Counters published just before the drain must be seen first.
    let fresh = runtime::STATS_PUBLISH_PERIOD + Duration::from_millis(50);
    tracing::info!(
        grace_ms = d.grace_ms,
        quiet_ms = d.quiet_ms,
        "draining: new dialogs get 503, in-flight transactions and dialogs go on"
    );
    loop {
        match wait_signal_for(Duration::from_millis(50)) {
            Some(libc::SIGHUP) => {
                let _ = control.reload("SIGHUP");
            }
            Some(sig) => {
                tracing::warn!(signal = sig, "second stop signal: exiting now");
                return;
            }
            None => {}
        }
        let pending = activity.sample(rt);
        if pending == 0 && started.elapsed() >= fresh && activity.last.elapsed() >= quiet {
            tracing::info!(
                after_ms = started.elapsed().as_millis() as u64,
                "drained: no transaction pending, nothing relayed for quiet_ms"
            );
            return;
        }
        if started.elapsed() >= grace {
            tracing::warn!(
                transactions_pending = pending,
                "drain grace time over: stopping with work in flight"
            );
            return;
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Ctl(c)) = &cli.command {
        let code = admin::client::run(&c.admin, c.token.as_deref(), &c.action.to_action());
        return ExitCode::from(code as u8);
    }
    let env = config::process_env;
    if cli.check_config {
        let code = check_config(&cli, &env, &mut std::io::stdout(), &mut std::io::stderr());
        return ExitCode::from(code as u8);
    }
    let cfg = match config::load(cli.config.as_deref(), &cli.overrides(), &env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sipfront: {e}");
            return ExitCode::from(1);
        }
    };
    init_logging(cfg.log.format, &cfg.log.level);
    let n_dest: usize = cfg.backend_sets.iter().map(|s| s.destinations.len()).sum();
    let monitor = Arc::new(Monitor::new(n_dest, cfg.probe.clone()));
    let routing = match monitor.install(&cfg, app::routing_with) {
        Ok((r, _)) => r,
        Err(e) => {
            eprintln!("sipfront: {e}");
            return ExitCode::from(1);
        }
    };
    for s in &routing.sets {
        tracing::info!(
            set = s.name(),
            algorithm = %s.algorithm(),
            destinations = ?s.destinations().iter().map(|d| d.uri.as_str()).collect::<Vec<_>>(),
            "backend set"
        );
    }
    let health = monitor.table();
    // Signals go to this thread only: block them before any thread starts.
    runtime::block_signals();
    let rt_cfg = app::runtime_config(&cfg);
    let rt = match runtime::start(&rt_cfg, app::proxy_config(&cfg), routing, health) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sipfront: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    let control = Arc::new(admin::Control::new(
        cfg.clone(),
        admin::ConfigSource {
            path: cfg.source.clone(),
            overrides: cli.overrides(),
            env,
        },
        Arc::clone(&monitor),
        Arc::clone(&rt.routing),
        rt.observer(),
        Arc::clone(&rt.drain),
        rt.driver.as_str(),
    ));
    let stop_probe = Arc::new(AtomicBool::new(false));
    let probe_ip = rt_cfg
        .listens
        .first()
        .map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip());
    let prober = match admin::prober::spawn(
        Arc::clone(&monitor),
        SocketAddr::new(probe_ip, cfg.probe.port),
        Arc::clone(&stop_probe),
    ) {
        Ok(h) => Some(h),
        Err(e) => {
            eprintln!("sipfront: cannot start the prober: {e}");
            let _ = rt.stop();
            return ExitCode::from(1);
        }
    };
    if let Some(listen) = cfg.admin.listen {
        if let Err(e) = admin::serve(listen, Arc::clone(&control)) {
            if cfg.admin.listen_given {
                eprintln!("sipfront: cannot start the admin API on {listen}: {e}");
                let _ = rt.stop();
                return ExitCode::from(1);
            }
            // The default address: another instance may have it.
            tracing::error!(
                admin = %listen,
                error = %e,
                "cannot start the admin API on its default address; running without it \
                 (set admin.listen or SIPFRONT_ADMIN_LISTEN)"
            );
        }
    }
    control.ready.store(true, Ordering::Relaxed);
    tracing::info!(driver = rt.driver.as_str(), "sipfront running");
    let mut activity = Activity::new();
    loop {
        match wait_signal_for(runtime::STATS_PUBLISH_PERIOD) {
            None => {
                activity.sample(&rt);
            }
            Some(libc::SIGHUP) => {
                let _ = control.reload("SIGHUP");
            }
            Some(libc::SIGTERM) => {
                tracing::info!("SIGTERM: draining");
                control.ready.store(false, Ordering::Relaxed);
                drain(&rt, &control, &mut activity);
                break;
            }
            Some(sig) => {
                tracing::info!(signal = sig, "stopping");
                break;
            }
        }
    }
    stop_probe.store(true, Ordering::Relaxed);
    if let Some(h) = prober {
        let _ = h.join();
    }
    let stats = rt.stop();
    tracing::info!("final counters:\n{}", stats.summary());
    ExitCode::SUCCESS
}
