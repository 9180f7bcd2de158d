"""Operations: Prometheus metrics for GET /metrics."""
