"""Measure this machine's fp32 convolution rate and memory bandwidth into a device profile.

``python -m pytest_edgeenergy calibrate --out PATH`` times a few ResNet-style conv2d
layers and a large tensor copy with torch, and writes a profile whose measured lines say
how they were measured. Power and network figures cannot be measured from software:
they are written as commented-out ``FILL IN`` lines, and the profile will not load until
someone fills them in from a power meter and a network test. No watts are invented.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import math
import os
import platform
import shlex
import sys
import textwrap
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from pytest_edgeenergy.atomic import write_atomic
from pytest_edgeenergy.errors import ProfileError
from pytest_edgeenergy.profiles import NAME_PATTERN, PROFILE_SUFFIX

if TYPE_CHECKING:
    from pytest_edgeenergy.meters.network import NetPeer

__all__ = [
    "CONV_LAYERS",
    "FILL_IN_FIELDS",
    "Calibration",
    "ConvShape",
    "conv_macs",
    "measure",
    "measure_macs_per_s",
    "measure_mem_bytes_per_s",
    "render_profile",
    "run",
]


@dataclasses.dataclass(frozen=True)
class ConvShape:
    """One timed layer: a square ``kernel``-sized conv2d, stride 1, 'same' padding, batch 1."""

    in_channels: int
    out_channels: int
    size: int  # height and width of the input and output feature maps
    kernel: int = 3

    def __str__(self) -> str:
        """Describe the layer as ``64->64 3x3 @56x56``."""
        k, s = self.kernel, self.size
        return f"{self.in_channels}->{self.out_channels} {k}x{k} @{s}x{s}"


# The 3x3 convolutions of ResNet-18's four stages at a 224x224 input: the layers that
# dominate the MACs of a typical edge CNN. Each is 115.6e6 MACs.
CONV_LAYERS: tuple[ConvShape, ...] = (
    ConvShape(64, 64, 56),
    ConvShape(128, 128, 28),
    ConvShape(256, 256, 14),
    ConvShape(512, 512, 7),
)
"""The conv2d layers timed for ``macs_per_s``."""

COPY_BYTES = 64 * 2**20
"""Size of the tensor copied to measure memory bandwidth: far larger than CPU caches."""

MIN_REPEATS = 3
"""Each timing is the best of at least this many runs, whatever the time budget."""

FILL_IN_FIELDS: tuple[tuple[str, str], ...] = (
    ("network", 'how this device reaches the others, e.g. "Gigabit Ethernet"'),
    ("idle_w", "watts at the supply with the device idle (OS up, nothing running); > 0"),
    ("active_w", "watts at the supply with every core busy on inference; >= idle_w"),
    ("net_bytes_per_s", "bytes/s of a saturated TCP transfer to a peer (e.g. iperf3 / 8)"),
    ("net_latency_s", "seconds of fixed cost per message (e.g. half a ping round trip)"),
    ("tx_j_per_byte", "(watts while sending at full rate - idle_w) / net_bytes_per_s"),
    ("rx_j_per_byte", "(watts while receiving at full rate - idle_w) / net_bytes_per_s"),
)
"""Profile fields software cannot measure, and how to measure each."""


@dataclasses.dataclass(frozen=True)
class Calibration:
    """What one calibration run measured, and how."""

    macs_per_s: float
    mem_bytes_per_s: float
    memory_bytes: int | None  # None when the OS does not report its physical memory
    torch_version: str
    threads: int
    when: dt.datetime
    command: str


def conv_macs(shape: ConvShape, batch: int = 1) -> int:
    """Multiply-accumulates of one conv2d: N x C_out x H_out x W_out x C_in x kH x kW."""
    return (
        batch
        * shape.out_channels
        * shape.size
        * shape.size
        * shape.in_channels
        * shape.kernel
        * shape.kernel
    )


def _best_time_s(step: Callable[[], object], budget_s: float) -> float:
    """Run ``step`` once to warm up, then repeatedly; return the fastest run's seconds."""
    step()
    best = math.inf
    repeats = 0
    deadline = time.perf_counter() + budget_s
    while repeats < MIN_REPEATS or time.perf_counter() < deadline:
        start = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - start)
        repeats += 1
    return best


def measure_macs_per_s(seconds: float, layers: Sequence[ConvShape] = CONV_LAYERS) -> float:
    """Sustained fp32 conv2d rate: total MACs of ``layers`` / sum of their best times.

    Uses torch's current thread count; ``seconds`` is shared between the layers.
    """
    import torch  # deferred: `python -m pytest_edgeenergy --help` should not load torch

    total_macs = 0
    total_s = 0.0
    with torch.inference_mode():
        for shape in layers:
            conv = torch.nn.Conv2d(
                shape.in_channels, shape.out_channels, shape.kernel, padding=shape.kernel // 2
            ).eval()
            x = torch.randn(1, shape.in_channels, shape.size, shape.size)
            total_s += _best_time_s(functools.partial(conv, x), seconds / len(layers))
            total_macs += conv_macs(shape)
    return total_macs / total_s


def measure_mem_bytes_per_s(seconds: float, nbytes: int = COPY_BYTES) -> float:
    """Copy bandwidth of one large fp32 tensor: bytes read plus bytes written, per second."""
    import torch

    source = torch.rand(nbytes // 4)
    target = torch.empty_like(source)
    best_s = _best_time_s(lambda: target.copy_(source), seconds)
    return 2 * source.numel() * source.element_size() / best_s


def _physical_memory_bytes() -> int | None:
    try:
        pages = os.sysconf("SC_PHYS_PAGES")
        page_size = os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    return pages * page_size if pages > 0 and page_size > 0 else None


def measure(seconds: float, command: str) -> Calibration:
    """Measure this host, spending about ``seconds`` in total (a quarter on memory)."""
    import torch

    return Calibration(
        macs_per_s=measure_macs_per_s(seconds * 0.75),
        mem_bytes_per_s=measure_mem_bytes_per_s(seconds * 0.25),
        memory_bytes=_physical_memory_bytes(),
        torch_version=str(torch.__version__),
        threads=torch.get_num_threads(),
        when=dt.datetime.now(dt.UTC).replace(microsecond=0),
        command=command,
    )


def render_profile(name: str, calibration: Calibration,
                   measured: Mapping[str, tuple[float, str]] | None = None) -> str:
    """Return the profile text: measured lines filled in, the others as FILL IN comments.

    ``measured`` maps further fields (``idle_w``, ``active_w`` from a power meter) to their
    value and the comment saying how it was measured.
    """
    measured = measured or {}
    c = calibration
    how = (
        f"by `{c.command}` on {c.when.isoformat()}, with torch {c.torch_version} on "
        f"{c.threads} thread{'s' if c.threads != 1 else ''}."
    )
    layers = ", ".join(str(shape) for shape in CONV_LAYERS)
    fill_in = dict(FILL_IN_FIELDS)
    out: list[str] = []

    def comment(text: str) -> None:
        out.extend(textwrap.wrap(text, 86, initial_indent="# ", subsequent_indent="# "))

    def unmeasured(field: str, what: str) -> None:
        comment(f"FILL IN: {what}")
        out.extend([f"# {field} =", ""])

    comment(f"Device profile of host {platform.node() or 'unknown'}, written {how}")
    out.append("#")
    comment(
        "THIS PROFILE WILL NOT LOAD until every FILL IN field below is filled in: "
        f"{', '.join(field for field, _ in FILL_IN_FIELDS if field not in measured)}. Power "
        "cannot be measured from software: use a power meter at the device's supply (or "
        "--meter NAME)."
    )
    out += ["", f'name = "{name}"', f'description = "{_toml_escape(_host_description())}"', ""]
    unmeasured("network", fill_in["network"])
    for field in ("idle_w", "active_w"):
        if field in measured:
            value, measured_how = measured[field]
            comment(measured_how)
            out += [f"{field} = {value:.4g}", ""]
        else:
            unmeasured(field, f"measure with a power meter: {fill_in[field]}")
    comment(
        f"Measured: fp32 conv2d at batch 1, stride 1, same padding ({layers}); MACs from "
        "the shapes (N x C_out x H_out x W_out x C_in x kH x kW) over the sum of each "
        f"layer's best of at least {MIN_REPEATS} timed runs; {how}"
    )
    out += [f"macs_per_s = {c.macs_per_s:.3e}", ""]
    comment(
        f"Measured: copy of a {COPY_BYTES // 2**20} MiB fp32 tensor, best of at least "
        f"{MIN_REPEATS} runs, bytes read plus bytes written over the time; {how}"
    )
    out += [f"mem_bytes_per_s = {c.mem_bytes_per_s:.3e}", ""]
    if c.memory_bytes is not None:
        comment("Physical memory reported by the OS (sysconf SC_PHYS_PAGES x SC_PAGE_SIZE).")
        out += [f"memory_bytes = {c.memory_bytes}", ""]
    else:
        unmeasured("memory_bytes", "physical memory in bytes, an integer")
    for field in ("net_bytes_per_s", "net_latency_s", "tx_j_per_byte", "rx_j_per_byte"):
        if field in measured:
            value, measured_how = measured[field]
            comment(measured_how)
            out += [f"{field} = {value:.4g}", ""]
        else:
            unmeasured(field, fill_in[field])
    return "\n".join(out)


def _host_description() -> str:
    cpu = platform.processor() or platform.machine() or "unknown CPU"
    return f"host {platform.node() or 'unknown'} ({platform.system()} {cpu}), CPU inference (fp32)"


def _toml_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _resolve_output(out: Path, name: str | None) -> tuple[Path, str]:
    """Return the file to write and the device name, from ``--out`` and ``--name``."""
    if out.suffix == PROFILE_SUFFIX:
        stem = out.name[: -len(PROFILE_SUFFIX)]
        if name is not None and name != stem:
            raise ProfileError(
                f"--name {name!r} differs from the output file name {out.name!r}: a profile's "
                f"name must be its file name without {PROFILE_SUFFIX}; drop --name, or pass a "
                "folder as --out"
            )
        target, name = out, stem
    elif out.is_dir():
        name = name or "host"
        target = out / f"{name}{PROFILE_SUFFIX}"
    else:
        raise ProfileError(
            f"--out {str(out)!r} must be a file ending in {PROFILE_SUFFIX} or an existing folder"
        )
    if not NAME_PATTERN.fullmatch(name):
        raise ProfileError(
            f"device name {name!r} must start with a letter and hold only letters, digits, "
            "'_', '.' and '-'"
        )
    if not target.parent.is_dir():
        raise ProfileError(f"cannot write {target}: folder {target.parent} does not exist")
    return target, name


def run(
    out: Path,
    name: str | None = None,
    seconds: float = 10.0,
    stdout: TextIO | None = None,
    argv: Sequence[str] | None = None,
    per_kind: bool = False,
    meter: str | None = None,
    net: NetPeer | None = None,
) -> int:
    """Calibrate this host and write its profile to ``out``; return the exit status.

    ``out`` is a ``.toml`` file (the device name is its stem) or a folder (the file is
    ``<name>.toml``, name "host" by default). With ``meter`` (a meter's name, see
    :mod:`pytest_edgeenergy.meters`), ``idle_w`` and ``active_w`` are measured with it too
    (:mod:`pytest_edgeenergy.meters.calibrate`). Nothing is written unless measuring
    succeeds, and an existing file is replaced atomically. With ``meter`` and ``net`` (the
    two hosts' rendezvous, :mod:`pytest_edgeenergy.meters.network`), ``tx_j_per_byte`` and
    ``rx_j_per_byte`` are measured first, with the other host. ``argv`` is recorded in the
    profile as the command that made it. With ``per_kind``, the profile also gets a
    ``[macs_per_s_by_kind]`` table (:mod:`pytest_edgeenergy.calibrate_kinds`). Raises
    ProfileError for a bad ``out``/``name``.
    """
    stdout = stdout or sys.stdout
    if not math.isfinite(seconds) or seconds <= 0:
        raise ProfileError(f"--seconds must be a positive number, got {seconds}")
    target, name = _resolve_output(Path(out), name)
    args = list(argv) if argv is not None else ["calibrate", "--out", str(out)]
    command = shlex.join([Path(sys.executable).name, "-m", "pytest_edgeenergy", *args])

    powers: dict[str, tuple[float, str]] = {}
    if meter is not None and net is not None:  # first: the other host waits for this one
        from pytest_edgeenergy.meters.network import measure_network_energy

        powers.update(measure_network_energy(meter, net, seconds))
    if meter is not None:
        from pytest_edgeenergy.meters.calibrate import measure_profile_power

        powers.update(measure_profile_power(meter, seconds))
    calibration = measure(seconds, command)
    text = render_profile(name, calibration, powers)
    if per_kind:
        from pytest_edgeenergy import calibrate_kinds

        rates = calibrate_kinds.measure_kind_rates(seconds)
        text += calibrate_kinds.render_kind_table(
            rates, f"by `{command}` on {calibration.when.isoformat()}")
        print("measured per kind: " + ", ".join(f"{k} = {v:.3e}" for k, v in rates.items()),
              file=stdout)
    write_atomic(target, text)

    missing = ", ".join(field for field, _ in FILL_IN_FIELDS if field not in powers)
    if calibration.memory_bytes is None:
        missing += ", memory_bytes"
    print(f"wrote {target}", file=stdout)
    print(
        f"measured: macs_per_s = {calibration.macs_per_s:.3e} (fp32 conv2d), "
        f"mem_bytes_per_s = {calibration.mem_bytes_per_s:.3e}, "
        f"with torch {calibration.torch_version} on {calibration.threads} threads",
        file=stdout,
    )
    for field, (value, how) in powers.items():
        unit = "J/B" if field.endswith("_j_per_byte") else "W"
        print(f"measured: {field} = {value:.4g} {unit}: {how}", file=stdout)
    print(
        f"The profile will not load until these are filled in: {missing}. "
        "Measure power with a power meter at the supply (or --meter NAME); no watts were "
        "guessed.",
        file=stdout,
    )
    return 0
