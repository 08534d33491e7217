//! The `sipfront` binary: flags and config, logging, the workers, signals.

use clap::Parser;
use sipfront::cli::{check_config, Cli};
use sipfront::{app, config, runtime};
use std::process::ExitCode;
use std::sync::Arc;

fn init_logging(format: config::LogFormat, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        config::LogFormat::Json => b.json().init(),
        config::LogFormat::Human => b.init(),
    }
}

/// Blocks SIGINT/SIGTERM/SIGHUP in this thread (and so in every thread it
/// starts) and returns the next one that arrives.
fn wait_signal() -> i32 {
    runtime::block_signals();
    // SAFETY: sigwait on a set built here.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        let mut sig = 0;
        libc::sigwait(&set, &mut sig);
        sig
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
    let routing = match app::routing(&cfg) {
        Ok(r) => r,
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
    let health = Arc::new(app::health(&routing));
    // Signals go to this thread only: block them before any worker starts.
    runtime::block_signals();
    let rt = match runtime::start(
        &app::runtime_config(&cfg),
        app::proxy_config(&cfg),
        routing,
        health,
    ) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sipfront: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    tracing::info!(driver = rt.driver.as_str(), "sipfront running");
    loop {
        match wait_signal() {
            libc::SIGHUP => {
                tracing::warn!("SIGHUP: configuration reload is not available yet; ignoring")
            }
            sig => {
                tracing::info!(signal = sig, "stopping");
                break;
            }
        }
    }
    let stats = rt.stop();
    tracing::info!("final counters:\n{}", stats.summary());
    ExitCode::SUCCESS
}
