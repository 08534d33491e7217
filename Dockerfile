# sipfront container: a build stage with the Rust toolchain, a slim runtime
# stage with the binary only, run as a non-root user.
#
#   docker build -t sipfront .
#   docker run --rm -p 5060:5060/udp -p 9090:9090 \
#     -e SIPFRONT_BACKENDS=sip:10.0.0.11:5060,sip:10.0.0.12:5060 sipfront
#   docker run --rm -v "$PWD/sipfront.toml:/etc/sipfront/sipfront.toml:ro" \
#     -e SIPFRONT_CONFIG=/etc/sipfront/sipfront.toml sipfront
#
# Configuration: a mounted file (SIPFRONT_CONFIG or `-c`) and/or SIPFRONT_*
# variables (docs/configuration.md). Docker's default seccomp profile blocks
# io_uring; io_driver "auto" runs the portable driver there.
# Operations (probes, drain, metrics): docs/operations.md.

FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin sipfront \
    && install -m 0755 target/release/sipfront /usr/local/bin/sipfront

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --user-group --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin sipfront \
    && mkdir -p /etc/sipfront
COPY --from=build /usr/local/bin/sipfront /usr/local/bin/sipfront
COPY sipfront.example.toml /etc/sipfront/sipfront.example.toml
# The admin API listens on all addresses inside the container so the
# orchestrator can probe /health and /ready; set SIPFRONT_ADMIN_TOKEN to
# protect the other endpoints. `sipfront ctl` (the HEALTHCHECK) uses
# SIPFRONT_ADMIN_URL.
ENV SIPFRONT_LISTEN=udp:0.0.0.0:5060 \
    SIPFRONT_ADMIN_LISTEN=0.0.0.0:9090 \
    SIPFRONT_ADMIN_URL=http://127.0.0.1:9090 \
    SIPFRONT_LOG_FORMAT=json
USER 10001:10001
EXPOSE 5060/udp 9090/tcp
# SIGTERM drains: 503 to new calls, /ready false, exit within drain.grace_ms.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["sipfront", "ctl", "health"]
ENTRYPOINT ["sipfront"]
