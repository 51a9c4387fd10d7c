"""Helpers for pytester tests of this plugin (and of plugins built on it)."""

from __future__ import annotations

import functools
import importlib.metadata
import os
import re
from pathlib import Path

import pytest

__all__ = ["REPO_ROOT", "plugin_args", "run", "run_subprocess", "warm_up", "write_profile_variant"]

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The folder that holds the ``pytest_edgeenergy`` package (for ``PYTHONPATH``)."""


@functools.cache
def _installed() -> bool:
    return any(ep.name == "edgeenergy" and ep.value == "pytest_edgeenergy.plugin"
               for ep in importlib.metadata.entry_points(group="pytest11"))


def plugin_args() -> list[str]:
    """``["-p", "pytest_edgeenergy.plugin"]`` unless the installed entry point loads it already.

    Loading the plugin twice (by entry point and by ``-p``) is an error, and running from a
    source checkout that is not installed has no entry point: this works in both.
    """
    return [] if _installed() else ["-p", "pytest_edgeenergy.plugin"]


@functools.cache
def warm_up() -> None:
    """Import, in this process, every module a partitioned run imports lazily.

    ``pytester.runpytest`` (in-process) removes the modules a nested run imported when it
    ends; torch registers operator libraries on import and refuses to do so twice, so a
    nested run must find them imported already. Call this at the top of a test module: it
    does its work once per process.
    """
    import torch

    from ..cluster import Cluster
    from ..energy import estimate_energy
    from ..partitioned import partition
    from ..zoo import build_model, model_input_shape

    shape = model_input_shape("tinycnn")
    model = build_model("tinycnn")
    x = torch.zeros(shape)
    for strategy in ("layer", "spatial", "output-channel", "input-channel"):
        pm = partition(model, strategy, Cluster.homogeneous("rpi4", 2), shape)
        torch.testing.assert_close(pm(x), model(x), rtol=0.0, atol=1e-5)
        estimate_energy(pm)


def write_profile_variant(folder: Path, device: str = "rpi4", **factors: float) -> Path:
    """Copy a shipped profile into ``folder`` (same name) with fields scaled by ``factors``.

    ``write_profile_variant(dev, active_w=1.1)`` writes ``dev/rpi4.toml`` with ``active_w``
    10 % higher: with ``--edge-device-dir=dev`` the cluster keeps its name (and its cases
    their keys) while the figures move, as when someone edits a profile.
    """
    from ..profiles import load_device, shipped_profiles_dir

    source = Path(str(shipped_profiles_dir())) / f"{device}.toml"
    profile = load_device(source)
    text = source.read_text(encoding="utf-8")
    for field, factor in factors.items():
        value = getattr(profile, field) * factor
        text, count = re.subn(rf"(?m)^{re.escape(field)}\s*=.*$", f"{field} = {value!r}", text)
        if count != 1:
            raise ValueError(f"{source} has no single '{field} = ...' line to change")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / source.name
    target.write_text(text, encoding="utf-8")
    return target


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """Run pytest in-process with the plugin loaded once and no cache provider."""
    return pytester.runpytest(*plugin_args(), "-p", "no:cacheprovider", *args)


def run_subprocess(pytester: pytest.Pytester, *args: str,
                   timeout: float | None = None) -> pytest.RunResult:
    """:func:`run` in a subprocess (as pytest-xdist needs), with :data:`REPO_ROOT` first on
    ``PYTHONPATH`` so that it and its workers import this very package."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", os.pathsep.join(
            [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
        return pytester.runpytest_subprocess(*plugin_args(), "-p", "no:cacheprovider", *args,
                                             timeout=timeout)
