"""``python -m pytest_edgeenergy worker``: its options and the call (torch is imported only
when the command runs, so ``--help`` is instant). The work is in :mod:`.backends.worker`."""

from __future__ import annotations

import argparse
import os
import signal
import sys

__all__ = ["add_arguments", "command"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``python -m pytest_edgeenergy worker``."""
    env = os.environ
    parser.add_argument("--rank", type=int, default=_env_int("RANK"), metavar="R",
                        help="this host's rank = the device it plays, 1..WORLD_SIZE-1 "
                             "(default: $RANK)")
    parser.add_argument("--world-size", type=int, default=_env_int("WORLD_SIZE"), metavar="N",
                        help="number of devices, rank 0 included (default: $WORLD_SIZE)")
    parser.add_argument("--master-addr", default=env.get("MASTER_ADDR"), metavar="ADDR",
                        help="address of rank 0, the host running pytest or your script "
                             "(default: $MASTER_ADDR)")
    parser.add_argument("--master-port", type=int, default=_env_int("MASTER_PORT"),
                        metavar="PORT", help="rank 0's rendezvous port (default: $MASTER_PORT)")
    parser.add_argument("--ifname", default=env.get("GLOO_SOCKET_IFNAME"), metavar="IFACE",
                        help="network interface gloo binds to, e.g. eth0 (default: "
                             "$GLOO_SOCKET_IFNAME, else the address the host name resolves to)")
    parser.add_argument("--join-timeout", type=float, default=60.0, metavar="S",
                        help="seconds to wait for rank 0 (default: 60)")
    parser.add_argument("--timeout", type=float, default=120.0, metavar="S",
                        help="seconds one run may take, every wait included (default: 120)")
    parser.add_argument("--threads", type=int, default=1, metavar="T",
                        help="intra-op threads of this rank (default: 1)")
    parser.add_argument("--no-restart", action="store_true",
                        help="exit when the rank process fails instead of starting a new one")


def _env_int(name: str) -> int | None:
    text = os.environ.get(name)
    return int(text) if text and text.strip().isdigit() else None


def command(args: argparse.Namespace) -> int:
    """Run ``python -m pytest_edgeenergy worker`` with parsed ``args``."""
    from .backends.rendezvous import Rendezvous
    from .backends.worker import supervise
    from .errors import PartitionError

    if args.rank is None:
        raise PartitionError("worker: give --rank (or set RANK)")
    rv = Rendezvous.from_env(args.world_size, addr=args.master_addr, port=args.master_port,
                             ifname=args.ifname, join_timeout_s=args.join_timeout,
                             timeout_s=args.timeout)
    # SIGTERM (kill, systemd, a CI job's end) ends the rank process too, as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        return supervise(rv, args.rank, threads=args.threads, restart=not args.no_restart)
    except KeyboardInterrupt:
        return 130
