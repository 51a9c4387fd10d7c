"""The Plan: the single source of truth of a partitioned inference.

A plan is plain data. It lists *pieces* (a region of a tensor held by one device) and a static
schedule of *steps*, each either a :class:`Task` (a device computes one region of one layer from
pieces it holds, with one slice of the layer's weights) or a :class:`Transfer` (a device sends a
region of a piece it holds to another device, which then holds a new piece). Device 0 holds the
input image as piece 0 before the first step and holds the final output after the last.

The schedule is a valid sequential order; dependencies are explicit (a task reads pieces, a
transfer sends one, each piece names the step that made it), so an energy model can simulate
devices working in parallel. After each step the plan lists the pieces whose last use it was,
which is what bounds each device's peak memory.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from .graph.box import Box, subtract_all
from .graph.ops import WeightSlice


@dataclass(frozen=True, slots=True)
class Piece:
    """A region ``box`` of ``tensor`` held by ``device``, made by step ``step`` (-1: the input)."""

    id: int
    device: int
    tensor: str
    box: Box
    bytes: int
    step: int


@dataclass(frozen=True, slots=True)
class Task:
    """``device`` computes region ``out`` (a piece) of ``layer``.

    ``kind`` is ``compute`` (a region of the layer's output, bias and activations included),
    ``partial`` (an input-channel partial sum over the full output, no bias) or ``reduce`` (the
    sum of partial sums for a region, then bias and activations). ``inputs`` are the tensors read
    (the layer's inputs, or the partial tensors for a reduction), ``in_boxes`` the ideal region of
    each (None: not needed; out-of-bounds parts are the layer's padding) and ``reads`` the pieces
    on ``device`` that hold them.
    """

    step: int
    device: int
    layer: str
    kind: str
    out: int
    inputs: tuple[str, ...]
    in_boxes: tuple[Box | None, ...]
    reads: tuple[tuple[int, ...], ...]
    weight: WeightSlice | None
    macs: int
    read_bytes: int
    write_bytes: int
    weight_bytes: int

    @property
    def bytes_touched(self) -> int:
        """Input activations read + output written + weights read."""
        return self.read_bytes + self.write_bytes + self.weight_bytes


@dataclass(frozen=True, slots=True)
class Transfer:
    """``src`` sends region ``box`` of its piece ``src_piece``; ``dst`` then holds the new piece
    ``piece``."""

    step: int
    src: int
    dst: int
    src_piece: int
    piece: int
    box: Box
    bytes: int


Step = Task | Transfer


@dataclass(frozen=True, slots=True)
class DeviceStats:
    """Per-device counts. Planned by :meth:`Plan.device_stats`, measured by a backend's trace."""

    macs: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    messages: int = 0  # messages sent
    weight_bytes: int = 0  # distinct weight slices the device holds
    peak_bytes: int = 0  # weights + the most activation bytes held at once

    def to_dict(self) -> dict[str, int]:
        """JSON form."""
        return asdict(self)


@dataclass(slots=True)
class Plan:
    """A partitioned inference: pieces, a static schedule, and what each layer's split is."""

    strategy: str
    params: dict[str, Any]
    n_devices: int
    speeds: tuple[float, ...]
    input_name: str
    input_shape: tuple[int, ...]
    output: str
    shapes: dict[str, tuple[int, ...]]  # every tensor, partial sums included, without batch
    layer_kinds: dict[str, str]  # layer -> description, in topological order
    graph_macs: int
    graph_weight_bytes: int
    pieces: list[Piece]
    steps: list[Step]
    frees: list[tuple[int, ...]]  # frees[s]: pieces whose last use was step s
    output_pieces: tuple[int, ...]
    notes: dict[str, str] = field(default_factory=dict)

    # ---- counts -------------------------------------------------------------------------
    @property
    def tasks(self) -> list[Task]:
        """The compute steps."""
        return [s for s in self.steps if isinstance(s, Task)]

    @property
    def transfers(self) -> list[Transfer]:
        """The communication steps."""
        return [s for s in self.steps if isinstance(s, Transfer)]

    @property
    def total_macs(self) -> int:
        """MACs over all devices."""
        return sum(t.macs for t in self.tasks)

    @property
    def redundant_macs(self) -> int:
        """MACs spent recomputing regions another task also computed (the halo recompute of
        spatial splits): each task's MACs minus those of the union of the regions computed
        with the same weight slice of the same layer."""
        groups: dict[tuple[object, ...], list[Task]] = {}
        for t in self.tasks:
            key = (t.layer, t.kind) + (t.weight.key() if t.weight is not None else ())
            groups.setdefault(key, []).append(t)
        extra = 0
        for tasks in groups.values():
            if len(tasks) < 2:
                continue
            seen: list[Box] = []
            for t in tasks:
                box = self.pieces[t.out].box
                if box.numel == 0:
                    continue
                new = sum(b.numel for b in subtract_all(box, seen))
                extra += t.macs - (t.macs // box.numel) * new
                seen.append(box)
        return extra

    @property
    def skipped_macs(self) -> int:
        """MACs of the model that no device computes because nothing reads their result (rows a
        strided layer skips, under spatial splits): model MACs + redundant - planned."""
        return self.graph_macs + self.redundant_macs - self.total_macs

    @property
    def comm_bytes(self) -> int:
        """Bytes that cross between devices."""
        return sum(t.bytes for t in self.transfers)

    def device_stats(self) -> list[DeviceStats]:
        """The planned per-device counts, indexed by device."""
        n = self.n_devices
        macs, sent, recv, msgs = [0] * n, [0] * n, [0] * n, [0] * n
        weights: list[dict[tuple[object, ...], int]] = [{} for _ in range(n)]
        for s in self.steps:
            if isinstance(s, Task):
                macs[s.device] += s.macs
                if s.weight is not None:
                    weights[s.device][(s.layer, *s.weight.key())] = s.weight_bytes
            else:
                sent[s.src] += s.bytes
                recv[s.dst] += s.bytes
                msgs[s.src] += 1
        w_bytes = [sum(w.values()) for w in weights]
        peak = self._peak_activation_bytes()
        return [DeviceStats(macs[d], sent[d], recv[d], msgs[d], w_bytes[d], w_bytes[d] + peak[d])
                for d in range(n)]

    def _peak_activation_bytes(self) -> list[int]:
        live = [0] * self.n_devices
        peak = [0] * self.n_devices
        for p in self.pieces:
            if p.step == -1:
                live[p.device] += p.bytes
                peak[p.device] = max(peak[p.device], live[p.device])
        for s in self.steps:
            made = self.pieces[s.out if isinstance(s, Task) else s.piece]
            live[made.device] += made.bytes
            peak[made.device] = max(peak[made.device], live[made.device])
            for pid in self.frees[s.step]:
                live[self.pieces[pid].device] -= self.pieces[pid].bytes
        return peak

    def idle_devices(self) -> list[int]:
        """Devices that compute nothing."""
        busy = {t.device for t in self.tasks}
        return [d for d in range(self.n_devices) if d not in busy]

    # ---- presentation -------------------------------------------------------------------
    def summary(self) -> str:
        """A readable per-device summary, then how each layer is split."""
        stats = self.device_stats()
        head = (f"plan: strategy={self.strategy} params={self.params} devices={self.n_devices} "
                f"input={self.input_shape} steps={len(self.steps)}")
        lines = [head, f"  MACs {self.total_macs:,} (model {self.graph_macs:,}, recomputed "
                       f"{self.redundant_macs:,}, skipped {self.skipped_macs:,}); transferred "
                       f"{self.comm_bytes:,} B"]
        idle = set(self.idle_devices())
        for d, st in enumerate(stats):
            n_tasks = sum(1 for t in self.tasks if t.device == d)
            tag = " (idle)" if d in idle else ""
            lines.append(
                f"  device {d}{tag}: tasks={n_tasks} macs={st.macs:,} sent={st.bytes_sent:,} B "
                f"received={st.bytes_received:,} B messages={st.messages} "
                f"weights={st.weight_bytes:,} B peak={st.peak_bytes:,} B")
        lines.append("  layers:")
        for layer, desc in self.layer_kinds.items():
            lines.append(f"    {layer}: {desc} -- {self.notes.get(layer, '')}")
        # notes about the plan as a whole (e.g. what a search compared), under their own key
        lines.extend(f"  {key}: " + text.replace("\n", "\n    ")
                     for key, text in self.plan_notes().items())
        return "\n".join(lines)

    def plan_notes(self) -> dict[str, str]:
        """The notes about the plan as a whole (keys that name no layer), e.g. a search's."""
        return {k: v for k, v in self.notes.items() if k not in self.layer_kinds}

    def __str__(self) -> str:
        return self.summary()

    # ---- serialisation ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-able form; :meth:`from_dict` restores an equal plan."""
        steps: list[dict[str, Any]] = []
        for s in self.steps:
            if isinstance(s, Task):
                steps.append({
                    "type": "task", "step": s.step, "device": s.device, "layer": s.layer,
                    "kind": s.kind, "out": s.out, "inputs": list(s.inputs),
                    "in_boxes": [None if b is None else b.to_list() for b in s.in_boxes],
                    "reads": [list(r) for r in s.reads],
                    "weight": None if s.weight is None else s.weight.to_dict(),
                    "macs": s.macs, "read_bytes": s.read_bytes, "write_bytes": s.write_bytes,
                    "weight_bytes": s.weight_bytes})
            else:
                steps.append({
                    "type": "transfer", "step": s.step, "src": s.src, "dst": s.dst,
                    "src_piece": s.src_piece, "piece": s.piece, "box": s.box.to_list(),
                    "bytes": s.bytes})
        return {
            "format": "pytest-edgeenergy-plan/1",
            "strategy": self.strategy, "params": self.params, "n_devices": self.n_devices,
            "speeds": list(self.speeds), "input_name": self.input_name,
            "input_shape": list(self.input_shape), "output": self.output,
            "shapes": {k: list(v) for k, v in self.shapes.items()},
            "layer_kinds": self.layer_kinds, "graph_macs": self.graph_macs,
            "graph_weight_bytes": self.graph_weight_bytes,
            "pieces": [[p.id, p.device, p.tensor, p.box.to_list(), p.bytes, p.step]
                       for p in self.pieces],
            "steps": steps, "frees": [list(f) for f in self.frees],
            "output_pieces": list(self.output_pieces), "notes": self.notes,
        }

    def to_json(self, indent: int | None = None) -> str:
        """Serialise to JSON text."""
        return json.dumps(self.to_dict(), indent=indent)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Plan:
        """Restore a plan from :meth:`to_dict` output."""
        if d.get("format") != "pytest-edgeenergy-plan/1":
            raise ValueError(f"not a pytest-edgeenergy plan (format={d.get('format')!r})")
        steps: list[Step] = []
        for s in d["steps"]:
            if s["type"] == "task":
                steps.append(Task(
                    step=s["step"], device=s["device"], layer=s["layer"], kind=s["kind"],
                    out=s["out"], inputs=tuple(s["inputs"]),
                    in_boxes=tuple(None if b is None else Box.from_list(b) for b in s["in_boxes"]),
                    reads=tuple(tuple(r) for r in s["reads"]),
                    weight=None if s["weight"] is None else WeightSlice.from_dict(s["weight"]),
                    macs=s["macs"], read_bytes=s["read_bytes"], write_bytes=s["write_bytes"],
                    weight_bytes=s["weight_bytes"]))
            else:
                steps.append(Transfer(step=s["step"], src=s["src"], dst=s["dst"],
                                      src_piece=s["src_piece"], piece=s["piece"],
                                      box=Box.from_list(s["box"]), bytes=s["bytes"]))
        return Plan(
            strategy=d["strategy"], params=dict(d["params"]), n_devices=d["n_devices"],
            speeds=tuple(d["speeds"]), input_name=d["input_name"],
            input_shape=tuple(d["input_shape"]), output=d["output"],
            shapes={k: tuple(v) for k, v in d["shapes"].items()},
            layer_kinds=dict(d["layer_kinds"]), graph_macs=d["graph_macs"],
            graph_weight_bytes=d["graph_weight_bytes"],
            pieces=[Piece(p[0], p[1], p[2], Box.from_list(p[3]), p[4], p[5]) for p in d["pieces"]],
            steps=steps, frees=[tuple(f) for f in d["frees"]],
            output_pieces=tuple(d["output_pieces"]), notes=dict(d["notes"]))

    @staticmethod
    def from_json(text: str) -> Plan:
        """Restore a plan from :meth:`to_json` text."""
        return Plan.from_dict(json.loads(text))

