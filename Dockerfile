# otelcol-apm image: the static binary, CA certificates (Datadog is HTTPS) and the default config, run as non-root.
# Build it with `make image` (the binary comes from `make build`: CGO off, -trimpath; no compiler in the image).
# The environment overlays are in the image, for example:
#   docker run -e DD_API_KEY=... -e DASHBOARD_BEARER_TOKEN=... otelcol-apm:0.1.0 \
#     --config /etc/otelcol-apm/config.yaml --config /etc/otelcol-apm/environments/production.yaml
# The hardened overlays (staging, production, gateway) also need the TLS key pair and the bearer token mounted, e.g.
#   -v /secrets:/secrets:ro -e OTLP_TLS_CERT_FILE=/secrets/tls.crt -e OTLP_TLS_KEY_FILE=/secrets/tls.key
#   -e OTLP_BEARER_TOKEN_FILE=/secrets/token, and a volume on /var/lib/otelcol-apm so the export queue survives.
FROM scratch
COPY bin/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY bin/otelcol-apm /otelcol-apm
COPY config.yaml /etc/otelcol-apm/config.yaml
COPY environments/ /etc/otelcol-apm/environments/
COPY --chown=10001:10001 bin/image-data/ /var/lib/otelcol-apm/
# In a container the receivers, the health check, the route metrics (for an in-cluster Prometheus) and the route
# dashboard listen on all interfaces; the defaults in config.yaml are loopback. The dashboard then requires
# DASHBOARD_BEARER_TOKEN (set DASHBOARD_ENDPOINT=localhost:8890 to keep it inside the container instead).
# MEMORY_LIMIT_MIB (config.yaml's memory_limiter, 512 by default) sizes the Go runtime's soft memory limit too: the
# soft_memory_limit extension sets it at 80 % of it unless GOMEMLIMIT is given (the Kubernetes manifests give
# 1400MiB under 1600, with GOGC=400, for a 2 GiB container: docs/scaling.md). GOGC stays at Go's 100 here: above it,
# production.yaml measured slower within 512 MiB, not faster.
ENV OTLP_GRPC_ENDPOINT=0.0.0.0:4317 \
    OTLP_HTTP_ENDPOINT=0.0.0.0:4318 \
    HEALTH_CHECK_ENDPOINT=0.0.0.0:13133 \
    ROUTE_METRICS_ENDPOINT=0.0.0.0:8889 \
    DASHBOARD_ENDPOINT=0.0.0.0:8890 \
    OTELCOL_APM_DATA_DIR=/var/lib/otelcol-apm \
    OTELCOL_APM_QUEUE_DIR=/var/lib/otelcol-apm/queue
USER 10001:10001
EXPOSE 4317 4318 8889 8890 13133
ENTRYPOINT ["/otelcol-apm"]
CMD ["--config", "/etc/otelcol-apm/config.yaml"]
