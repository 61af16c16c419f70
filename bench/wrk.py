"""Running wrk against the service and reading its report."""

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

LUA = Path(__file__).parent / "lua"
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


@dataclass
class WrkResult:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    errors: int
    server_p50_ms: float | None = None  # from Server-Timing, when the script collects it
    server_p99_ms: float | None = None


def _ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if not match:
        raise ValueError(f"unexpected wrk latency {value!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse(output: str) -> WrkResult:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    server = re.search(r"^Server-Timing p50 ([\d.]+) p99 ([\d.]+)", output, re.M)
    return WrkResult(
        server_p50_ms=float(server.group(1)) if server else None,
        server_p99_ms=float(server.group(2)) if server else None,
        requests_per_s=rps,
        p50_ms=p50,
        p99_ms=p99,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        errors=sum(int(g) for g in errors.groups()) if errors else 0,
    )


def run(
    base_url: str,
    script: str,
    *,
    key: str = "",
    path: str = "/health",
    connections: int = 64,
    seconds: int = 10,
    threads: int = 2,
) -> WrkResult:
    env = {**os.environ, "BENCH_KEY": key, "BENCH_PATH": path}
    command = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
        "-s", str(LUA / script), base_url + path,
    ]  # fmt: skip
    output = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    result = parse(output)
    if result.non_2xx or result.errors:
        print(f"  ! {script} {path}: {result.non_2xx} non-2xx, {result.errors} socket errors")
    return result
