# syntax=docker/dockerfile:1
#
# The memberd image: the one `memberd` binary on a distroless glibc base, running as an
# unprivileged user, with no shell and no package manager at run time.
#
#   docker build -t memberd:0.1.0 --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" .
#
# Where no container engine is at hand, `cargo build --release --locked -p memberd` builds the
# same binary this image carries (docs/operations/kubernetes.md).

# The toolchain is pinned by version tag. bookworm's glibc (2.36) is the one the runtime base
# below (Debian 12) has, so the binary links against nothing newer than it will find.
FROM rust:1.95-bookworm AS build
WORKDIR /src
# The whole workspace: cargo resolves every member's manifest even when it builds one package.
COPY . .
# The registry and target caches live in BuildKit cache mounts, so a rebuild compiles only what
# changed; the binary is copied out of the cache mount within the same step.
# --locked: exactly the dependency versions of Cargo.lock, or the build fails.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p memberd \
 && install -D -m 0755 target/release/memberd /out/usr/local/bin/memberd \
 && install -d -m 0750 /out/var/lib/memberd

# distroless/cc: glibc, libgcc and CA certificates, nothing else; the :nonroot variant runs as
# uid/gid 65532. Release pipelines should pin it further by digest (…:nonroot@sha256:…), which
# must be resolved against the registry at build time.
FROM gcr.io/distroless/cc-debian12:nonroot

ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=""
LABEL org.opencontainers.image.title="memberd" \
      org.opencontainers.image.description="Membership and loyalty platform for retail chains: points ledger, members, coupons and campaigns" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot"

COPY --from=build /out/usr/local/bin/memberd /usr/local/bin/memberd
# The embedded store's directory (single mode), owned by the user memberd runs as; a volume is
# mounted over it in production. There is no shell here to create it at run time.
COPY --from=build --chown=65532:65532 /out/var/lib/memberd /var/lib/memberd

# memberd's own defaults listen on 127.0.0.1, which nothing outside a container can reach.
# These are the container's defaults; a MEMBERD_* variable wins over the config file, so the
# Helm chart sets the same values explicitly and keeps the ports fixed (probes, Services and
# NetworkPolicies depend on them).
ENV MEMBERD_HTTP_ADDR=0.0.0.0:8080 \
    MEMBERD_GRPC_ADDR=0.0.0.0:50051 \
    MEMBERD_DATA_DIR=/var/lib/memberd

# 8080: REST under /v1 (gateway), /healthz, /readyz, /metrics. 50051: gRPC and grpc.health.v1.
EXPOSE 8080 50051

# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 65532:65532

# `memberd health` asks this process's own /readyz (the port of http_addr) and exits 0 on 200.
# Exec form: there is no shell in this image. Kubernetes ignores HEALTHCHECK and uses the
# chart's probes instead.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["/usr/local/bin/memberd", "health"]

ENTRYPOINT ["/usr/local/bin/memberd"]
CMD ["serve"]
