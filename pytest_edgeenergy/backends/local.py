"""The local backend: every device of a plan executed in one process, on its own data only.

Each device keeps a store of the pieces it holds. A task assembles its inputs from *its own*
pieces (the plan says which), pads them with the layer's padding where the region reaches past
the tensor's border, and runs the layer's kernel with only its weight slice. A transfer copies
exactly the planned region out of the sender's piece into a new tensor on the receiver. Pieces
are dropped after their last use. Every count in the :class:`Trace` is measured from these
tensors (their element counts and the weights the kernels really read), never copied from the
plan, so comparing the two checks the plan.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ..errors import PartitionError
from ..graph.box import Box, subtract_all
from ..graph.layergraph import LayerGraph
from ..graph.ops import Op, Reduce, RunResult, pad_to_ideal
from ..plan import Piece, Plan, Task
from ..trace import Trace


class PlanExecutionError(PartitionError):
    """A plan that does not execute as planned (a bug in a strategy, never bad user input)."""


def _assemble(store: dict[int, Tensor], pieces: Sequence[Piece], pids: Sequence[int],
              box: Box, batch: int, what: str) -> Tensor:
    """The region ``box`` of a tensor, from the listed pieces (a view when one piece holds it)."""
    held = [pieces[p] for p in pids]
    if box.empty:  # the region lies wholly in the padding
        return torch.empty((batch, *box.shape), dtype=torch.float32)
    for p in held:
        if p.box.contains(box):
            return store[p.id][box.relative_to(p.box)]
    if subtract_all(box, [p.box for p in held]):
        raise PlanExecutionError(f"{what}: region {box} is not covered by the pieces read")
    any_t = store[held[0].id]
    out = torch.empty((batch, *box.shape), dtype=any_t.dtype)
    for p in held:
        part = p.box.intersect(box)
        if not part.empty:
            out[part.relative_to(box)] = store[p.id][part.relative_to(p.box)]
    return out


def run_local(plan: Plan, graph: LayerGraph, x: Tensor) -> tuple[Tensor, Trace]:
    """Execute ``plan`` for input ``x``; return device 0's output and the measured trace."""
    expected = tuple(plan.input_shape)
    if tuple(x.shape) != expected:
        raise PartitionError(f"input of shape {tuple(x.shape)} does not match the planned input "
                             f"shape {expected}")
    if x.dtype != torch.float32:
        raise PartitionError(f"input dtype {x.dtype} is not supported; use torch.float32")
    n = plan.n_devices
    trace = Trace(n_devices=n)
    batch = expected[0]
    store: dict[int, Tensor] = {}
    live = [0] * n
    seen_weights: list[dict[tuple[object, ...], int]] = [{} for _ in range(n)]
    pieces = plan.pieces
    peak_act = [0] * n

    def hold(pid: int, t: Tensor) -> None:
        p = pieces[pid]
        if tuple(t.shape) != (batch, *p.box.shape):
            raise PlanExecutionError(
                f"piece {pid} of '{p.tensor}' on device {p.device} has shape {tuple(t.shape)}, "
                f"planned {(batch, *p.box.shape)}")
        store[pid] = t
        live[p.device] += t.numel() * t.element_size()
        peak_act[p.device] = max(peak_act[p.device], live[p.device])

    for p in pieces:
        if p.step == -1:
            hold(p.id, x.detach())
    ops: dict[tuple[str, str, int], Op] = {}
    with torch.no_grad():
        for step in plan.steps:
            if isinstance(step, Task):
                res = _run_task(step, plan, graph, store, batch, ops)
                trace.macs[step.device] += res.macs
                if step.weight is not None:
                    used = sum(w.numel() * w.element_size() for w in res.weights)
                    seen_weights[step.device][(step.layer, *step.weight.key())] = used
                hold(step.out, res.out)
            else:
                src = pieces[step.src_piece]
                data = store[src.id][step.box.relative_to(src.box)].clone()
                hold(step.piece, data)
                size = data.numel() * data.element_size()
                trace.bytes_sent[step.src] += size
                trace.bytes_received[step.dst] += size
                trace.messages[step.src] += 1
            for pid in plan.frees[step.step]:
                t = store.pop(pid)
                live[pieces[pid].device] -= t.numel() * t.element_size()
        out_box = Box.full(plan.shapes[plan.output])
        output = _assemble(store, pieces, plan.output_pieces, out_box, batch, "final output")
        output = output.contiguous()
    for d in range(n):
        trace.weight_bytes[d] = sum(seen_weights[d].values())
        trace.peak_bytes[d] = trace.weight_bytes[d] + peak_act[d]
    return output, trace


def _run_task(task: Task, plan: Plan, graph: LayerGraph, store: dict[int, Tensor], batch: int,
              ops: dict[tuple[str, str, int], Op]) -> RunResult:
    layer = graph.by_name[task.layer]
    if task.kind == "reduce":
        key = (task.layer, task.kind, len(task.inputs))
        if key not in ops:
            ops[key] = Reduce(layer.op, len(task.inputs))
        op = ops[key]
    else:
        op = layer.op
    out_box = plan.pieces[task.out].box
    xs: list[Tensor | None] = []
    for i, (tensor, ideal, reads) in enumerate(zip(task.inputs, task.in_boxes, task.reads,
                                                    strict=True)):
        if ideal is None:
            xs.append(None)
            continue
        clipped = ideal.clip(plan.shapes[tensor])
        what = f"step {task.step} ({task.layer} on device {task.device}) input '{tensor}'"
        for pid in reads:
            if plan.pieces[pid].device != task.device:
                raise PlanExecutionError(f"{what}: piece {pid} is on device "
                                         f"{plan.pieces[pid].device}")
        part = _assemble(store, plan.pieces, reads, clipped, batch, what)
        xs.append(pad_to_ideal(part, ideal, clipped, op.fill(i)))
    res = op.run(xs, out_box, task.weight)
    if task.kind != "partial":
        for act in layer.post:
            res.out = act.apply(res.out)
    return res
