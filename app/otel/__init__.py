"""OpenTelemetry in: the OTLP/HTTP receiver that records spans and log records as actions."""
