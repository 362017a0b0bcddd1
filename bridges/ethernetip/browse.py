"""Browse a Logix controller on demand: its tags and UDT members as a ready-to-paste EtherNet/IP device config.

``uv run python -m bridges.ethernetip.browse 10.0.0.5 --route 1,0`` prints YAML for the ``devices:``
list of an ``ethernetip`` bridge: every atomic and STRING tag, every member of every UDT tag
(nested UDTs flattened, hidden BOOL host members left out), arrays as ``Tag[0]{N}``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

import yaml

from bridges.ethernetip.cip import port_path
from bridges.ethernetip.client import CipClient, CipLost, CipRefused
from bridges.ethernetip.symbols import SymbolTable, upload
from model.bridges.ethernetip import EthernetIpDevice

__all__ = ["browse", "device_config", "main"]


async def browse(*, host: str, port: int = 44818, route: Sequence[tuple[int, int]] = ((1, 0),),
                 timeout_s: float = 5.0) -> SymbolTable:  # fmt: skip
    """Upload a controller's tag and UDT list (controller and program scope); raises ``CipLost``/``CipRefused``."""
    client = CipClient(host=host, port=port, route=port_path(route), connected=True, connection_size=4002,
                       timeout_s=timeout_s)  # fmt: skip
    try:
        await client.open()
        return await upload(client)
    finally:
        await client.close()


def device_config(
    table: SymbolTable, *, device_id: str, host: str, port: int, route: Sequence[tuple[int, int]]
) -> dict[str, object]:
    """One ``devices:`` entry reading every browsed leaf, validated by the bridge's own config model."""
    entry: dict[str, object] = {"id": device_id, "host": host, "port": port, "route": [list(hop) for hop in route]}
    entry["tags"] = table.browse()
    EthernetIpDevice.model_validate(entry)  # what is printed is a config that loads
    return entry


def _hop(text: str) -> tuple[int, int]:
    port, _, link = text.partition(",")
    return int(port), int(link)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the browsed controller as YAML; exit 1 with the reason when it cannot be browsed."""
    parser = argparse.ArgumentParser(prog="python -m bridges.ethernetip.browse", description=__doc__.splitlines()[0])
    parser.add_argument("host", help="controller (or its EtherNet/IP module) address")
    parser.add_argument("--port", type=int, default=44818, help="EtherNet/IP TCP port")
    parser.add_argument("--route", action="append", type=_hop, metavar="PORT,LINK",
                        help="route hop, repeatable (default 1,0: backplane slot 0)")  # fmt: skip
    parser.add_argument("--no-route", action="store_true", help="no route (Micro800, or a CompactLogix's own port)")
    parser.add_argument("--id", default="plc", help="Sparkplug device id to print")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per request")
    args = parser.parse_args(argv)
    route: list[tuple[int, int]] = [] if args.no_route else (args.route or [(1, 0)])
    try:
        table = asyncio.run(browse(host=args.host, port=args.port, route=route, timeout_s=args.timeout))
    except (CipLost, CipRefused) as exc:
        print(f"cannot browse {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    entry = device_config(table, device_id=args.id, host=args.host, port=args.port, route=route)
    sys.stdout.write(yaml.safe_dump({"devices": [entry]}, sort_keys=False, width=120))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
