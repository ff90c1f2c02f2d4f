# syntax=docker/dockerfile:1
#
# The `pulse` binary in a small runtime image, used by docker-compose.yml for
# `pulse produce` and `pulse consume`:
#
#   docker build -t pulse .
#   docker run --rm pulse --help
#
# Stage 1 builds with the Rust toolchain; stage 2 holds only the binary on
# Debian slim (glibc, bash for the health check; TLS roots are compiled in,
# so no ca-certificates package is needed).

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=trixie

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS builder
WORKDIR /src
# The whole workspace: cargo reads every member's manifest even when building
# one package. .dockerignore keeps target/ and local state out.
COPY . .
# Cache mounts keep the registry and the build directory between builds, so
# a source change recompiles only pulse itself.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p pulse-cli \
    && install -D -m 0755 target/release/pulse /out/pulse

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin pulse
COPY --from=builder /out/pulse /usr/local/bin/pulse
USER pulse
# pulse handles SIGTERM itself: it flushes open windows and pending batches,
# then exits 0.
STOPSIGNAL SIGTERM
ENV PULSE_LOG=info,rskafka=error
ENTRYPOINT ["/usr/local/bin/pulse"]
CMD ["--help"]
