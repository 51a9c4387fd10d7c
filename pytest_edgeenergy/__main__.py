"""Command line: ``python -m pytest_edgeenergy <subcommand> ...``.

A small dispatcher: each subcommand has one function here that turns parsed arguments
into a call of its own module, where the work is done.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeAlias

from pytest_edgeenergy.errors import EdgeEnergyError

Command = Callable[[argparse.Namespace, Sequence[str]], int]
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def _subcommand(subparsers: Subparsers, name: str, command: Command, *, help: str,
                description: str) -> argparse.ArgumentParser:
    """Add subcommand ``name``, which ``command`` runs; its arguments go on the parser returned."""
    parser = subparsers.add_parser(name, help=help, description=description)
    parser.set_defaults(command=command)
    return parser


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _calibrate(args: argparse.Namespace, argv: Sequence[str]) -> int:
    if args.from_trace is not None:
        from pytest_edgeenergy import calibrate_trace

        return calibrate_trace.run_from_trace(args.from_trace)
    if args.out is None:
        raise EdgeEnergyError("calibrate: give --out PATH (or --from-trace FILE)")
    from pytest_edgeenergy import calibrate  # deferred: it imports torch when it runs

    net = None
    if args.net_rendezvous is not None:
        from pytest_edgeenergy.meters.network import NetPeer

        if args.meter is None:
            raise EdgeEnergyError("calibrate: --net-rendezvous measures the per-byte network "
                                  "energies with a power meter: give --meter NAME too")
        if args.net_rank is None:
            raise EdgeEnergyError("calibrate: --net-rendezvous needs --net-rank 0 (the host "
                                  "that listens there) or 1 (the other host)")
        addr, port = args.net_rendezvous
        net = NetPeer(addr, port, args.net_rank, args.net_ifname, args.net_join_timeout)
    return calibrate.run(out=args.out, name=args.name, seconds=args.seconds, argv=argv,
                         per_kind=args.per_kind, meter=args.meter, net=net)


def _rendezvous(text: str) -> tuple[str, int]:
    from pytest_edgeenergy.meters.network import parse_rendezvous

    try:
        return parse_rendezvous(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_calibrate(subparsers: Subparsers) -> None:
    parser = _subcommand(
        subparsers, "calibrate", _calibrate,
        help="measure this host's fp32 conv rate and memory bandwidth into a device profile",
        description=(
            "Time a few ResNet-style conv2d layers and a large tensor copy with torch and "
            "write a device profile. Power and network fields are left as FILL IN lines: "
            "the profile will not load until you fill them in from a power meter."
        ),
    )
    parser.add_argument("--out", type=Path, metavar="PATH",
                        help="profile file to write (NAME.toml), or an existing folder to write "
                             "NAME.toml in")
    parser.add_argument("--from-trace", type=Path, metavar="FILE",
                        help="instead of timing this host, derive each device's macs_per_s, "
                             "net_bytes_per_s and net_latency_s from a measured gloo trace "
                             "(saved with --edge-trace-dir) and print them as profile lines")
    parser.add_argument("--name",
                        help="device name; defaults to the file name, or 'host' when --out is "
                             "a folder")
    parser.add_argument("--seconds", type=_positive_seconds, default=10.0, metavar="S",
                        help="about how long to measure, in seconds (default: 10)")
    parser.add_argument("--per-kind", action="store_true",
                        help="also measure dense, pointwise and depthwise conv and linear layers "
                             "into a [macs_per_s_by_kind] table (used under "
                             "--edge-scenario=compute=per-kind)")
    parser.add_argument("--meter", metavar="NAME",
                        help="also measure idle_w and active_w with this power meter (rapl, "
                             "nvml, jetson, ina219, ina260, NAME:key=value,...; see "
                             "docs/meters.md)")
    net = parser.add_argument_group(
        "network energy (two hosts)",
        "With --meter: also measure tx_j_per_byte and rx_j_per_byte by exchanging messages "
        "with a second host that runs the same command with the other --net-rank.")
    net.add_argument("--net-rendezvous", type=_rendezvous, metavar="ADDR:PORT",
                     help="where the two hosts meet: rank 0's address and a free port on it")
    net.add_argument("--net-rank", type=int, choices=(0, 1),
                     help="0 on the host that listens at --net-rendezvous, 1 on the other")
    net.add_argument("--net-ifname", metavar="IFACE",
                     help="network interface gloo binds to, e.g. eth0 (default: the address "
                          "the host name resolves to)")
    net.add_argument("--net-join-timeout", type=_positive_seconds, default=60.0, metavar="S",
                     help="seconds to wait for the other host (default: 60)")


def _positive_count(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of 1 or more, got {text!r}")
    return int(text)


def _add_saved_runs_options(parser: argparse.ArgumentParser) -> None:
    """``--dir`` and ``--markdown``, shared by the commands that read saved runs."""
    from pytest_edgeenergy.records.runs import DEFAULT_HISTORY_DIR  # no torch, no pytest

    parser.add_argument("--dir", type=Path, default=Path(DEFAULT_HISTORY_DIR), metavar="PATH",
                        help=f"the history folder (default: {DEFAULT_HISTORY_DIR})")
    parser.add_argument("--markdown", action="store_true",
                        help="print GitHub Markdown (for a job summary or a comment)")


def _compare(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from pytest_edgeenergy.records import compare

    return compare.run(args.runs, baseline=args.baseline, history_dir=args.dir,
                       fail_on=args.fail_on, markdown=args.markdown)


def _add_compare(subparsers: Subparsers) -> None:
    parser = _subcommand(
        subparsers, "compare", _compare,
        help="compare two saved runs, or a saved run against the baseline",
        description=(
            "Compare the energy figures of two runs saved with pytest --edge-autosave (old "
            "first), or of one run against a baseline file. A run is a number, 'latest', "
            "'previous' or a file; with no run named, the previous run is compared with the "
            "latest. Exit status 1 when a case regressed past a threshold."
        ),
    )
    parser.add_argument("runs", nargs="*", metavar="RUN", help="old run, then new run")
    parser.add_argument("--baseline", type=Path, metavar="PATH",
                        help="compare the one RUN named against this baseline file")
    parser.add_argument("--fail-on", action="append", metavar="EXPR",
                        help="thresholds as pytest's --edge-fail-on, e.g. max_device_j:2%% "
                             "(repeatable; default: the plugin's)")
    _add_saved_runs_options(parser)


def _history(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from pytest_edgeenergy.records import history

    return history.run(history_dir=args.dir, case=args.case, metric=args.metric,
                       last=args.last, markdown=args.markdown, plot=args.plot)


def _picture_path(text: str) -> Path:
    """A ``.svg``/``.png`` file or a folder, when matplotlib is installed (the plot extra)."""
    from pytest_edgeenergy.plots import EXTRA, FORMATS, PlotUnavailableError, require_matplotlib

    path = Path(text)
    if path.suffix and path.suffix.lower() not in FORMATS:
        raise argparse.ArgumentTypeError(
            f"{text!r} has an unknown picture suffix; expected {' or '.join(FORMATS)}, or a "
            "folder")
    try:
        require_matplotlib()
    except PlotUnavailableError:
        raise argparse.ArgumentTypeError(
            f"pictures need matplotlib, which is not installed: {EXTRA}") from None
    return path


def _add_history(subparsers: Subparsers) -> None:
    parser = _subcommand(
        subparsers, "history", _history,
        help="per-case trends across saved runs",
        description=(
            "Print, for each case, a metric across the runs saved with pytest --edge-autosave, "
            "with each run's commit, branch and time and the change from the previous run."
        ),
    )
    parser.add_argument("--case", metavar="SUBSTR",
                        help="only cases whose key contains SUBSTR, e.g. 'tinycnn|layer'")
    parser.add_argument("--metric", default="max_device_j",
                        help="the case metric to follow (default: max_device_j)")
    parser.add_argument("--last", type=_positive_count, metavar="N",
                        help="only the N most recent runs")
    parser.add_argument("--plot", type=_picture_path, metavar="PATH",
                        help="also draw each case's trend, commits on the axis: a .svg or .png "
                             "file, or a folder for one SVG per case (needs the 'plot' extra)")
    _add_saved_runs_options(parser)


def _worker(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from pytest_edgeenergy import worker_cli

    return worker_cli.command(args)


def _add_worker(subparsers: Subparsers) -> None:
    from pytest_edgeenergy import worker_cli

    parser = _subcommand(
        subparsers, "worker", _worker,
        help="run the ranks of devices 1..N-1 on other hosts (gloo backend, env:// rendezvous)",
        description=(
            "Play one device of a cluster: join rank 0 (the host running pytest "
            "--edge-backend=gloo --edge-rendezvous=env, or your script) through "
            "torch.distributed's env:// rendezvous, receive only this device's weight slices, "
            "and run its share of every plan until rank 0 ends the session. A rank process "
            "that fails or is killed is restarted and joins rank 0's next group. See "
            "docs/distributed.md."
        ),
    )
    worker_cli.add_arguments(parser)


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="python -m pytest_edgeenergy",
        description="Tools around pytest-edgeenergy's device profiles and results.",
    )
    subparsers = parser.add_subparsers(title="subcommands", metavar="SUBCOMMAND", required=True)
    _add_calibrate(subparsers)
    _add_compare(subparsers)
    _add_history(subparsers)
    _add_worker(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand and return its exit status (2 for bad input, as argparse does)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(arguments)
    command: Command = args.command
    try:
        return command(args, arguments)
    except EdgeEnergyError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")


if __name__ == "__main__":
    sys.exit(main())
