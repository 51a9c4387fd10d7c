"""The env:// rendezvous shared by rank 0 (the user's process) and the worker ranks.

Rank 0 hosts a :class:`torch.distributed.TCPStore` at ``MASTER_ADDR:MASTER_PORT`` (what
torch.distributed's ``env://`` init method and ``torchrun`` use); every worker connects to it.
The store carries the small control messages, under ``edgeenergy/``:

* ``generation``: the current process group's number. A group that failed is never reused:
  rank 0 starts the next generation and the workers (restarted by their supervisor) join it.
* ``g<G>/join/<rank>``: a worker's host name and pid, when it joins generation G.
* ``g<G>/job/<k>/<rank>``: job k for a rank (plan, its weight slices when they changed, the
  run's start time); ``g<G>/done/<k>/<rank>`` its measured row and timeline;
  ``g<G>/error/<k>/<rank>`` where it failed and the traceback.
* ``g<G>/alive/<rank>``: a heartbeat (time and current step) every :data:`HEARTBEAT_S`.
* ``g<G>/abort``: rank 0 gave up on generation G; ``g<G>/died/<rank>``: a supervisor saw its rank's
  process end (how); ``stop``: the session is over, workers exit.

The tensors of a run move over one ``ProcessGroupGloo`` per generation (its own prefix of the
store), bound to the network interface given by ``--ifname`` / ``GLOO_SOCKET_IFNAME`` or to
the address the host name resolves to.
"""

from __future__ import annotations

import os
import pickle
import socket
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch.distributed as dist

# torch.distributed re-exports TCPStore from its C extension without declaring it.
from torch.distributed import TCPStore  # type: ignore[attr-defined]

from ..errors import PartitionError

__all__ = ["HEARTBEAT_S", "PREFIX", "Rendezvous", "dumps", "loads", "make_group"]

PREFIX = "edgeenergy/"
#: How often a worker rank reports that it is alive, and at which step.
HEARTBEAT_S = 0.5


def dumps(obj: object) -> bytes:
    """Pickle a control message (torch tensors included)."""
    return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def loads(data: bytes) -> Any:
    """Unpickle a control message."""
    return pickle.loads(data)


@dataclass(frozen=True, slots=True)
class Rendezvous:
    """Where the ranks meet and how long they wait.

    ``addr``/``port``: rank 0's store (``MASTER_ADDR``/``MASTER_PORT``); ``world_size``: the
    number of devices (``WORLD_SIZE``); ``ifname``: the network interface gloo binds to (None:
    the address the host name resolves to); ``join_timeout_s``: how long rank 0 waits for
    every worker to join, and a worker for rank 0's store; ``timeout_s``: one run.
    """

    addr: str
    port: int
    world_size: int
    ifname: str | None = None
    join_timeout_s: float = 60.0
    timeout_s: float = 120.0

    @staticmethod
    def from_env(world_size: int | None = None, *, addr: str | None = None,
                 port: int | None = None, ifname: str | None = None,
                 join_timeout_s: float = 60.0, timeout_s: float = 120.0) -> Rendezvous:
        """Fill what is not given from ``MASTER_ADDR``, ``MASTER_PORT``, ``WORLD_SIZE`` and
        ``GLOO_SOCKET_IFNAME``; a :class:`PartitionError` naming what is missing."""
        env = os.environ
        addr = addr or env.get("MASTER_ADDR")
        port_text = str(port) if port is not None else env.get("MASTER_PORT")
        size_text = str(world_size) if world_size is not None else env.get("WORLD_SIZE")
        missing = [name for name, v in (("MASTER_ADDR", addr), ("MASTER_PORT", port_text),
                                        ("WORLD_SIZE", size_text)) if not v]
        if missing:
            raise PartitionError(f"env:// rendezvous: {', '.join(missing)} not set (export "
                                 "them, or pass them as options)")
        assert addr is not None and port_text is not None and size_text is not None
        try:
            port_n, size_n = int(port_text), int(size_text)
        except ValueError:
            raise PartitionError(f"env:// rendezvous: MASTER_PORT={port_text!r} and "
                                 f"WORLD_SIZE={size_text!r} must be whole numbers") from None
        if not 0 < port_n < 65536 or size_n < 1:
            raise PartitionError(f"env:// rendezvous: MASTER_PORT={port_n} or WORLD_SIZE="
                                 f"{size_n} out of range")
        return Rendezvous(addr, port_n, size_n, ifname or env.get("GLOO_SOCKET_IFNAME") or None,
                          join_timeout_s, timeout_s)

    def store(self, is_master: bool) -> TCPStore:
        """Rank 0's store (``is_master``) or a connection to it (waits ``join_timeout_s``)."""
        timeout = timedelta(seconds=self.join_timeout_s)
        if is_master:
            # Listen on MASTER_ADDR only (TCPStore alone would listen on every address).
            family = socket.AF_INET6 if ":" in self.addr else socket.AF_INET
            listener = socket.create_server((self.addr, self.port), family=family,
                                            backlog=max(16, 2 * self.world_size))
            return TCPStore(self.addr, self.port, self.world_size, True, timeout,
                            master_listen_fd=listener.detach(), wait_for_workers=False)
        return TCPStore(self.addr, self.port, self.world_size, False, timeout)

    def client(self) -> TCPStore:
        """One more connection to rank 0's store (for a thread of its own)."""
        return TCPStore(self.addr, self.port, self.world_size, False,
                        timedelta(seconds=self.join_timeout_s))


def make_group(store: Any, generation: int, rank: int, rv: Rendezvous) -> Any:
    """Generation ``generation``'s ``ProcessGroupGloo`` (blocks until every rank makes it)."""
    opts = dist.ProcessGroupGloo._Options()  # type: ignore[attr-defined]
    if rv.ifname:
        device = dist.ProcessGroupGloo.create_device(interface=rv.ifname)
    elif rv.addr in ("127.0.0.1", "localhost", "::1"):
        device = dist.ProcessGroupGloo.create_device(hostname=rv.addr)
    else:
        device = dist.ProcessGroupGloo.create_default_device()
    opts._devices = [device]
    opts._timeout = timedelta(seconds=rv.timeout_s)
    prefixed = dist.PrefixStore(  # type: ignore[attr-defined]
        f"{PREFIX}g{generation}/pg/", store)
    return dist.ProcessGroupGloo(prefixed, rank, rv.world_size, opts)


class GroupComm:
    """:class:`~.rank.Comm` over a ``ProcessGroupGloo``."""

    def __init__(self, group: Any) -> None:
        self.group = group

    def isend(self, tensor: Any, dst: int, tag: int) -> Any:
        """Post a send."""
        return self.group.send([tensor], dst, tag)

    def irecv(self, tensor: Any, src: int, tag: int) -> Any:
        """Post a receive."""
        return self.group.recv([tensor], src, tag)
