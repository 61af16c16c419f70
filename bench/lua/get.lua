-- GET of BENCH_PATH with the tenant key; wrk reports latency percentiles and non-2xx counts.
wrk.headers["X-API-Key"] = os.getenv("BENCH_KEY")
wrk.path = os.getenv("BENCH_PATH") or "/health"
