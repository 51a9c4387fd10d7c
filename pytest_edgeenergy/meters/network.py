"""``calibrate --meter NAME --net-rendezvous ADDR:PORT --net-rank R``: per-byte network energies.

Two hosts run the same command, one as rank 0 (it listens at ``ADDR:PORT``, its own address)
and one as rank 1 (it connects there). They meet through a :class:`torch.distributed.TCPStore`
and a gloo process group (:mod:`pytest_edgeenergy.backends.rendezvous`), then exchange
messages of :data:`MESSAGE_BYTES` bytes in two phases: rank 0 sends and rank 1 receives,
then the other way round. In each phase both hosts measure their own meter in step
(:mod:`.ranks`: the same idle windows, then the same windows of back-to-back messages), so
each host gets, from its own meter:

- ``tx_j_per_byte`` = (energy while sending - idle power x the time) / bytes sent,
- ``rx_j_per_byte`` = (energy while receiving - idle power x the time) / bytes received,

the energy above idle per payload byte (gloo's headers and the TCP/IP overhead are part of
the cost, not of the count), which is what the energy model prices per byte. Each figure
comes with the profile line saying how it was measured.

A host whose meter cannot measure stops at once with the reason, before connecting (its peer
then reports, after its join timeout, that it did not join); a peer that cannot be reached is
named with the address and the timeout.
"""

from __future__ import annotations

import dataclasses
import socket
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from ..errors import EdgeEnergyError
from .measure import MeasuredEnergy, StopRule, measure_energy
from .protocol import BOARD, MeterError, MeterUnavailableError
from .ranks import RankAgreement, open_meter

__all__ = ["MESSAGE_BYTES", "NET_TAG", "TELL_TIMEOUT_S", "NetPeer", "PeerError",
           "measure_network_energy", "parse_rendezvous"]

MESSAGE_BYTES = 4 * 2**20
"""The size of each message exchanged: large enough that per-message costs are small."""
NET_TAG = 7
"""The tag of the measured messages (the agreement uses its own)."""
TELL_TIMEOUT_S = 3.0
"""How long rank 1, whose meter is unavailable, tries to reach rank 0 to tell it why."""
_KEY = "edgeenergy-net/"


class PeerError(EdgeEnergyError):
    """The two hosts could not meet or exchange messages."""


@dataclasses.dataclass(frozen=True)
class NetPeer:
    """Where the two hosts meet (rank 0's address and port), which one this is, the network
    interface gloo binds to (None: the address the host name resolves to), and how long to
    wait for the other host and for one message."""

    addr: str
    port: int
    rank: int
    ifname: str | None = None
    join_timeout_s: float = 60.0
    timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if self.rank not in (0, 1):
            raise PeerError(f"--net-rank {self.rank}: the rank is 0 (the host that listens at "
                            "--net-rendezvous) or 1 (the other host)")

    @property
    def where(self) -> str:
        """``ADDR:PORT``."""
        return f"[{self.addr}]:{self.port}" if ":" in self.addr else f"{self.addr}:{self.port}"


def parse_rendezvous(text: str) -> tuple[str, int]:
    """``"10.0.0.2:29600"`` (or ``"[fe80::1]:29600"``) -> (address, port); ValueError with
    the reason otherwise."""
    addr, sep, port_text = text.strip().rpartition(":")
    addr = addr.strip("[]")
    if not sep or not addr or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"expected ADDR:PORT (rank 0's address and a port from 1 to 65535), "
                         f"got {text!r}")
    return addr, int(port_text)


def _meet(peer: NetPeer) -> tuple[Any, Any]:
    """The store (hosted by rank 0) and the gloo group of the two hosts; PeerError naming the
    other host when it cannot be reached."""
    from ..backends.rendezvous import Rendezvous, make_group

    rv = Rendezvous(peer.addr, peer.port, 2, peer.ifname, peer.join_timeout_s, peer.timeout_s)
    other = 1 - peer.rank
    if peer.rank == 1:
        _reach(peer)  # a plain socket first: torch's store logs every failed try at length
    try:
        store = rv.store(peer.rank == 0)
    except OSError as exc:
        raise PeerError(f"--net-rank 0 cannot listen at --net-rendezvous {peer.where}: "
                        f"{exc.strerror or exc} (use an address of this host and a free port)"
                        ) from None
    except Exception as exc:  # torch's store: timed out, refused
        raise PeerError(_unreachable(peer, _first_line(exc))) from None
    store.set(f"{_KEY}host/{peer.rank}", socket.gethostname())
    _wait_for_peer(store, peer, other)
    return store, make_group(store, 1, peer.rank, rv)


def _wait_for_peer(store: Any, peer: NetPeer, other: int) -> None:
    """Wait for the other host's name; PeerError when it said it cannot measure, or when it
    did not come within the join timeout."""
    deadline = time.monotonic() + peer.join_timeout_s
    while not store.check([f"{_KEY}host/{other}"]):
        if store.check([f"{_KEY}unavailable/{other}"]):
            why = store.get(f"{_KEY}unavailable/{other}").decode()
            raise PeerError(f"the peer (rank {other}) cannot measure: {why}; it stopped, and "
                            "nothing was measured or written here either")
        if time.monotonic() >= deadline:
            raise PeerError(f"the peer (rank {other}) did not join --net-rendezvous "
                            f"{peer.where} within {peer.join_timeout_s:g} s "
                            f"(--net-join-timeout); start the same command on the other host "
                            f"with --net-rank {other}")
        time.sleep(0.05)


def _tell_rank_0(peer: NetPeer, why: str) -> None:
    """Rank 1, whose meter cannot measure, tells rank 0 why, so that rank 0 stops at once
    with the reason instead of waiting out its join timeout. One quick try: when rank 0 is
    not listening yet it will say that rank 1 did not join."""
    if peer.rank != 1:
        return
    from ..backends.rendezvous import Rendezvous

    quick = min(TELL_TIMEOUT_S, peer.join_timeout_s)
    try:
        socket.create_connection((peer.addr, peer.port), timeout=quick).close()
        rv = Rendezvous(peer.addr, peer.port, 2, peer.ifname, quick, peer.timeout_s)
        rv.store(False).set(f"{_KEY}unavailable/1",
                            f"its --meter is unavailable on host {socket.gethostname()}: {why}")
    except Exception:  # rank 0 is not there (yet): nobody to tell
        return


def _unreachable(peer: NetPeer, why: str) -> str:
    return (f"the peer at --net-rendezvous {peer.where} (rank 0) could not be reached within "
            f"{peer.join_timeout_s:g} s (--net-join-timeout): {why}; start the same command "
            "there with --net-rank 0 first, and check the address, the port and the firewall")


def _reach(peer: NetPeer) -> None:
    """Wait until rank 0 accepts a connection, trying again until the join timeout."""
    deadline = time.monotonic() + peer.join_timeout_s
    while True:
        left = deadline - time.monotonic()
        try:
            socket.create_connection((peer.addr, peer.port), timeout=max(0.1, left)).close()
            return
        except OSError as exc:
            if time.monotonic() + 0.2 >= deadline:
                raise PeerError(_unreachable(peer, exc.strerror or str(exc) or "timed out")
                                ) from None
            time.sleep(0.2)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def measure_network_energy(spec: str, peer: NetPeer, seconds: float = 10.0,
                           message_bytes: int = MESSAGE_BYTES) -> dict[str, tuple[float, str]]:
    """``{"tx_j_per_byte": (J, comment), "rx_j_per_byte": (J, comment)}`` of this host,
    measured with the meter ``spec`` names while exchanging messages with the peer (see the
    module docstring), each series of windows stopped after about ``seconds``.

    MeterUnavailableError when this meter cannot measure (checked before any connection),
    PeerError when the hosts cannot meet or the exchange fails, MeterError when a figure comes
    out below idle."""
    import torch

    from ..backends.rendezvous import GroupComm

    meter, reason = open_meter(spec)
    if meter is None:
        _tell_rank_0(peer, reason)
        raise MeterUnavailableError(f"--meter {spec!r} is unavailable here: {reason}; nothing "
                                    "was measured or written")
    resolution_s = float(getattr(meter, "resolution_s", 0.0))
    rule = StopRule(min_window_s=max(0.25, 10 * resolution_s), max_seconds=max(seconds, 1.0))
    store, group = _meet(peer)
    other_host = store.get(f"{_KEY}host/{1 - peer.rank}").decode()
    comm = GroupComm(group)
    buf = torch.zeros(message_bytes, dtype=torch.uint8)
    timeout = timedelta(seconds=peer.timeout_s)
    agreement = RankAgreement(comm, peer.rank, 2, peer.timeout_s)
    figures: dict[str, tuple[float, str]] = {}
    try:
        for sender in (0, 1):
            sending = peer.rank == sender
            measured = measure_energy(_message(comm, buf, 1 - peer.rank, sending, timeout),
                                      meter, rule, scope=f"rank {peer.rank}",
                                      together=agreement)
            field = "tx_j_per_byte" if sending else "rx_j_per_byte"
            figures[field] = _figure(field, measured, spec, message_bytes, other_host)
    except EdgeEnergyError:
        raise
    except Exception as exc:  # the peer went away, a message timed out
        raise PeerError(f"exchanging messages with the peer (host {other_host}) failed: "
                        f"{_first_line(exc)}; nothing was written") from None
    finally:
        abort = getattr(group, "abort", None)
        if callable(abort):
            abort()
    return figures


def _message(comm: Any, buf: Any, other: int, sending: bool,
             timeout: timedelta) -> Callable[[], None]:
    """One message of ``buf`` to (or from) the other host, waited for."""
    def run() -> None:
        work = comm.isend(buf, other, NET_TAG) if sending else comm.irecv(buf, other, NET_TAG)
        work.wait(timeout)
    return run


def _figure(field: str, measured: MeasuredEnergy, spec: str, message_bytes: int,
            other_host: str) -> tuple[float, str]:
    """The per-byte energy and its profile comment."""
    j_per_byte = measured.net_j / message_bytes
    doing = "sending" if field == "tx_j_per_byte" else "receiving"
    if j_per_byte < 0:
        raise MeterError(
            f"--meter {spec!r} measured {field} below idle ({j_per_byte:.3g} J/B): the meter "
            f"cannot tell {doing} from idle here (too coarse, or another program was busy "
            "while idle was measured); nothing was written")
    board = "" if BOARD in measured.domains else (
        f" NOT THE WHOLE BOARD: the meter read {', '.join(measured.domains)} only, so this "
        "under-estimates the energy at the supply.")
    rse = measured.rse
    stable = "" if measured.stable else " NOT STABLE: the target was not reached."
    comment = (
        f"Measured with meter {spec!r} ({measured.how}): energy above idle while {doing} "
        f"{message_bytes} B messages over gloo {'to' if doing == 'sending' else 'from'} host "
        f"{other_host}, back to back, {len(measured.active.values)} windows of "
        f"{measured.runs_per_window} messages minus an idle baseline of "
        f"{len(measured.idle.values)} windows ({measured.idle_w:.3g} W), divided by the "
        f"payload bytes (relative standard error {rse:.2%}).{board}{stable}")
    return j_per_byte, comment
