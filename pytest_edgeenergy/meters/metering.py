"""A run's meter (``--edge-meter``): whether it works here, and what it measured, per case.

:class:`Metering` is what the plugin holds for the session: built from the meter's name
(a bad name is a :class:`~.registry.MeterSpecError`, which the plugin turns into a usage
error), asked once whether the meter is available, then handed each case's partitioned
inference to measure. Its rows travel from pytest-xdist workers to the controller as JSON,
and :meth:`Metering.section` is the report's "measured beside estimated" section. Nothing
here imports pytest.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .compare import MeasuredRow, MeterStatus, local_row, measured_section, rank_rows
from .measure import StopRule, measure_energy
from .protocol import Meter
from .ranks import ShareMeasurement
from .registry import get_meter

__all__ = ["Metering"]


class Metering:
    """The meter named by ``spec`` (None: no meter asked for), its status and its rows.

    It is also the report's section (``records.report.ExtraSection``): ``measured`` in the
    JSON report.
    """

    key = "measured"

    def __init__(self, spec: str | None, rule: StopRule | None = None,
                 clock: Callable[[], float] = time.perf_counter,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.spec = spec
        self.rule = rule
        self._clock = clock
        self._sleep = sleep
        self.meter: Meter | None = None
        self.status: MeterStatus | None = None
        self.rows: list[MeasuredRow] = []
        if spec is not None:
            meter = get_meter(spec)
            available = meter.available()
            self.status = MeterStatus(spec, available.ok, available.reason)
            self.meter = meter if available.ok else None

    @property
    def skip_reason(self) -> str | None:
        """Why a test that needs the meter cannot run (None when it can)."""
        if self.status is None:
            return "no meter: run with --edge-meter=NAME"
        if not self.status.ok:
            return f"meter {self.status.spec!r} unavailable: {self.status.reason}"
        return None

    def measure_local(self, case: str, run: Callable[[], object],
                      devices: Sequence[tuple[float, float]]) -> MeasuredRow | None:
        """Measure ``run`` (a partitioned inference on the local backend) and record the row
        beside the devices' estimated (compute_j, comm_j); None without a working meter."""
        if self.meter is None:
            return None
        measured = measure_energy(run, self.meter, self.rule, clock=self._clock,
                                  sleep=self._sleep)
        row = local_row(case, devices, measured)
        self.rows.append(row)
        return row

    def measure_ranks(self, case: str, measure: Callable[[], Sequence[ShareMeasurement]],
                      devices: Sequence[tuple[float, float]]) -> list[MeasuredRow]:
        """Have the gloo backend's ranks measure their shares (``measure`` asks them: each
        rank opens the meter on its own machine) and record one row per device beside its
        estimated (compute_j, comm_j); [] without a meter. Asked even when the meter is
        unavailable in this process: the ranks' machines may have one."""
        if self.spec is None:
            return []
        rows = rank_rows(case, devices, measure())
        self.rows.extend(rows)
        return rows

    def close(self) -> None:
        """Release the meter (a jtop connection, say) if it has a ``close()``; idempotent."""
        close = getattr(self.meter, "close", None)
        if callable(close):
            close()

    @property
    def csv_columns(self) -> tuple[str, ...]:
        """The CSV report's columns for the measurement (none when nothing could be)."""
        if self.status is None or not (self.status.ok or self.rows):
            return ()
        return ("measured_j", "measured_estimated_j", "measured_ratio", "measured_stable")

    def csv_cells(self, key: str) -> list[object]:
        """Case ``key``'s measured cells (blank when it was not measured)."""
        if not self.csv_columns:
            return []
        rows = [r for r in self.rows if r.case == key and r.measured_j is not None]
        if not rows:
            return ["", "", "", ""]
        if len(rows) == 1:  # the local backend's one row: its figures as they are
            row = rows[0]
            return [repr(row.measured_j), repr(row.estimated_j),
                    "" if row.ratio is None else repr(row.ratio), row.stable]
        # gloo: the measured devices' sum beside the sum of their estimates
        measured_j = sum(r.measured_j or 0.0 for r in rows)
        estimated_j = sum(r.estimated_j for r in rows)
        ratio = measured_j / estimated_j if estimated_j else None
        return [repr(measured_j), repr(estimated_j), "" if ratio is None else repr(ratio),
                all(r.stable for r in rows)]

    def to_json(self) -> str:
        """The rows, for a pytest-xdist worker's ``workeroutput``."""
        return json.dumps([r.to_dict() for r in self.rows], sort_keys=True)

    def merge_json(self, text: str) -> None:
        """Add the rows a worker handed over."""
        self.rows.extend(MeasuredRow.from_dict(d) for d in json.loads(text))

    def section(self, markdown: bool = False) -> str:
        """The report's section ("" when no meter was asked for)."""
        return measured_section(self.status, self.rows, markdown)

    def to_text(self) -> str:
        """The section as the terminal shows it."""
        return self.section()

    def to_markdown(self, folder: Path | None = None) -> str:
        """The section in Markdown."""
        return self.section(markdown=True)

    def to_dict(self) -> dict[str, Any]:
        """JSON form: the meter's status and every row."""
        return {"meter": None if self.status is None else self.status.to_dict(),
                "rows": [r.to_dict() for r in sorted(self.rows,
                                                     key=lambda r: (r.case, r.device))]}
