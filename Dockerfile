# otelcol-apm image: the static binary, CA certificates (Datadog is HTTPS) and the default config, run as non-root.
# Build it with `make image` (the binary comes from `make build`: CGO off, -trimpath; no compiler in the image).
# Environment overlays are mounted, for example:
#   docker run -v "$PWD/environments:/etc/otelcol-apm/environments:ro" -e DD_API_KEY=... otelcol-apm:0.1.0 \
#     --config /etc/otelcol-apm/config.yaml --config /etc/otelcol-apm/environments/production.yaml
# The hardened overlays (staging, production, gateway) also need the TLS key pair and the bearer token mounted, e.g.
#   -v /secrets:/secrets:ro -e OTLP_TLS_CERT_FILE=/secrets/tls.crt -e OTLP_TLS_KEY_FILE=/secrets/tls.key
#   -e OTLP_BEARER_TOKEN_FILE=/secrets/token, and a volume on /var/lib/otelcol-apm so the export queue survives.
FROM scratch
COPY bin/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY bin/otelcol-apm /otelcol-apm
COPY config.yaml /etc/otelcol-apm/config.yaml
COPY --chown=10001:10001 bin/image-data/ /var/lib/otelcol-apm/
# In a container the receivers and health check listen on all interfaces; the defaults in config.yaml are loopback.
ENV OTLP_GRPC_ENDPOINT=0.0.0.0:4317 \
    OTLP_HTTP_ENDPOINT=0.0.0.0:4318 \
    HEALTH_CHECK_ENDPOINT=0.0.0.0:13133 \
    OTELCOL_APM_DATA_DIR=/var/lib/otelcol-apm
USER 10001:10001
EXPOSE 4317 4318 13133
ENTRYPOINT ["/otelcol-apm"]
CMD ["--config", "/etc/otelcol-apm/config.yaml"]
