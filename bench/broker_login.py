"""Benchmark: a flood of bad MQTT logins against the embedded broker, and a good login during it.

Two runs in one process, same flood (N concurrent CONNECTs with wrong passwords from 127.0.0.1,
unknown and known users mixed) and the same good login (from 127.0.0.2, started 0.2 s into the
flood): first the baseline, the bounds off (no throttling, checks unbounded in threads, no login
cache: what the broker did before issue 13), then the shipped ``login`` defaults. Prints the CPU
seconds the process spent, argon2 checks run, logins refused without a check, the good login's time
to CONNACK and the flood's wall time, with the ratios.

    uv run python -m bench.broker_login [--flood 200]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from model.broker_config import BrokerFileConfig
from tests.uns.broker.raw_mqtt import login_answer
from uns.broker import EmbeddedBroker
from uns.broker.passwords import hash_password
from uns.mqtt.types import BrokerUrl

_UNBOUNDED: dict[str, object] = {
    "max_failures_per_address": 1_000_000,
    "max_failures_per_user": 1_000_000,
    "max_concurrent_checks": 1_000,
    "cache_size": 0,
}


async def _login(url: BrokerUrl, user: str, password: str, *, local_host: str | None = None) -> bytes:
    return await login_answer(url, user, password, client_id=f"{user}-b", local_host=local_host, within_s=300)


async def _run(label: str, login: dict[str, object], flood: int, password_hash: str) -> dict[str, float]:
    config = BrokerFileConfig.model_validate(
        {
            "listeners": {"tcp": {"bind": "127.0.0.1", "port": 0}},
            "users": {"alice": {"password_hash": password_hash, "role": "app"}},
            "login": login,
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        async with EmbeddedBroker(config=config, data_dir=Path(tmp)) as broker:
            cpu, wall = time.process_time(), time.monotonic()
            users = ["alice" if i % 2 else f"guess-{i}" for i in range(flood)]
            bad = asyncio.gather(*(_login(broker.url, user, "wrong") for user in users))
            await asyncio.sleep(0.2)
            good_started = time.monotonic()
            good = await _login(broker.url, "alice", "right", local_host="127.0.0.2")
            good_s = time.monotonic() - good_started
            answers = await bad
            flood_s = time.monotonic() - wall
            cpu_s = time.process_time() - cpu
            stats = broker.stats
    assert good == bytes([0x20, 2, 0, 0]), f"{label}: the good login got {good.hex()}"
    assert all(answer == bytes([0x20, 2, 0, 5]) for answer in answers), f"{label}: a bad login got in"
    result = {
        "cpu_s": cpu_s,
        "checks": float(stats.password_checks),
        "throttled": float(stats.login_throttled),
        "good_login_s": good_s,
        "flood_s": flood_s,
    }
    print(
        f"{label:9s} flood of {flood}: {cpu_s:6.1f} CPU-s, {stats.password_checks:4d} argon2 checks, "
        f"{stats.login_throttled:4d} refused unchecked, flood done in {flood_s:6.2f} s; "
        f"good login from another address: CONNACK in {good_s:6.3f} s"
    )
    return result


async def _main(flood: int) -> None:
    password_hash = hash_password("right")
    before = await _run("baseline", _UNBOUNDED, flood, password_hash)
    after = await _run("defaults", {}, flood, password_hash)
    print(
        f"ratio defaults/baseline: CPU {after['cpu_s'] / before['cpu_s']:.3f}, "
        f"good login {after['good_login_s'] / before['good_login_s']:.3f}, "
        f"argon2 checks {after['checks'] / before['checks']:.3f}"
    )


def main() -> None:
    """Run both floods and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flood", type=int, default=200, help="bad logins sent at once")
    args = parser.parse_args()
    asyncio.run(_main(args.flood))


if __name__ == "__main__":
    main()
