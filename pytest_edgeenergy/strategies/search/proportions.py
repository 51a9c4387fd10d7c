"""Split proportions that minimise an objective on a heterogeneous cluster.

A split layer gives device ``d`` a share ``s_d`` of its work (rows or channels). With ``v_d``
the device's MACs per second, ``a_d`` its compute energy per MAC and ``i_d`` its static power
(both read from the run's energy model through :func:`.objective.unit_costs`), a layer of ``W``
MACs split by ``s`` takes ``tau * W`` seconds with ``tau = max_d s_d / v_d``, and costs device
``d`` about ``W * (a_d * s_d + i_d * tau)`` joules. Everything scales with ``W``, so one set of
proportions per cluster and objective serves every layer:

* ``makespan_s``: ``s_d`` proportional to ``v_d`` (the classic biased split, MoDNN);
* ``max_device_j``: minimise ``max_d (a_d s_d + i_d tau)``; for a fixed ``tau`` the smallest
  level ``lam`` is found by bisection (device ``d`` takes at most
  ``min(tau v_d, (lam - i_d tau) / a_d)``), and ``tau`` by a geometric grid above its minimum
  ``1 / sum(v)``;
* ``total_j``: minimise ``sum_d a_d s_d + tau sum_d i_d``; for a fixed ``tau`` the cheapest
  devices per MAC are filled first, up to ``tau v_d``.

This is the compute-bound part of the energy model only (communication depends on the layout
and is priced by the search itself), which is why the search tries these proportions beside
the speed-proportional ones rather than instead of them.
"""

from __future__ import annotations

from collections.abc import Sequence

TAU_GRID = 96
TAU_SPAN = 16.0
BISECTIONS = 60


def _tau_grid(speeds: Sequence[float]) -> list[float]:
    lo = 1.0 / sum(speeds)
    return [lo * TAU_SPAN ** (k / (TAU_GRID - 1)) for k in range(TAU_GRID)]


def _minmax_shares(speeds: Sequence[float], energy_per_mac: Sequence[float],
                   static_w: Sequence[float], tau: float) -> tuple[float, list[float]]:
    """The smallest ``max_d (a_d s_d + i_d tau)`` reachable within time ``tau``, with shares."""

    def caps(level: float) -> list[float]:
        return [max(0.0, min(tau * v, (level - i * tau) / a if a > 0 else tau * v))
                for v, a, i in zip(speeds, energy_per_mac, static_w, strict=True)]

    lo = max(i * tau for i in static_w)
    hi = lo + max(energy_per_mac) + 1e-30
    if sum(caps(hi)) < 1.0 - 1e-12:
        return float("inf"), []
    for _ in range(BISECTIONS):
        mid = (lo + hi) / 2
        if sum(caps(mid)) >= 1.0:
            hi = mid
        else:
            lo = mid
    shares = caps(hi)
    total = sum(shares)
    return hi, [s / total for s in shares]


def _total_shares(speeds: Sequence[float], energy_per_mac: Sequence[float],
                  static_w: Sequence[float], tau: float) -> tuple[float, list[float]]:
    """The smallest ``sum_d a_d s_d + tau sum_d i_d`` within time ``tau``, with shares."""
    shares = [0.0] * len(speeds)
    left = 1.0
    for d in sorted(range(len(speeds)), key=lambda k: (energy_per_mac[k], k)):
        take = min(left, tau * speeds[d])
        shares[d] = take
        left -= take
    if left > 1e-12:
        return float("inf"), []
    cost = sum(a * s for a, s in zip(energy_per_mac, shares, strict=True)) + tau * sum(static_w)
    return cost, shares


def optimal_shares(objective: str, speeds: Sequence[float], energy_per_mac: Sequence[float],
                   static_w: Sequence[float]) -> tuple[float, ...]:
    """Shares (summing to 1) that minimise ``objective`` for a compute-bound layer.

    ``speeds`` are MACs per second, ``energy_per_mac`` joules per MAC of compute, ``static_w``
    the power every device draws for the whole inference. ``makespan_s`` gives the
    speed-proportional split; ``max_device_j`` (also used under a deadline) and ``total_j`` solve
    the problems in the module docstring.
    """
    total_speed = sum(speeds)
    if objective == "makespan_s" or total_speed <= 0:
        return tuple(v / total_speed for v in speeds)
    solve = _total_shares if objective == "total_j" else _minmax_shares
    best: tuple[float, list[float]] = (float("inf"), [])
    for tau in _tau_grid(speeds):
        found = solve(speeds, energy_per_mac, static_w, tau)
        if found[0] < best[0] - 1e-18:
            best = found
    if not best[1]:
        return tuple(v / total_speed for v in speeds)
    return tuple(best[1])
