"""Capture a model as a torch.fx graph whose every node carries its (meta-tensor) value.

Model libraries write modules that plain ``fx.symbolic_trace`` cannot follow: padding computed
at run time from ``x.shape`` ("same" convolutions), ``x.view(x.size(0), -1)``, ``if
x.shape[1] != c`` and so on. The :class:`ShapeTracer` here traces with the input shape known:
every node is evaluated on meta tensors as it is created (nothing real runs), and a query of a
traced tensor's shape (``x.shape``, ``x.size()``, ``x.dim()``, ``len(x)``) returns plain
Python integers instead of a graph node. The graph is therefore specialised to one input shape,
which is what a partitioning plan is anyway.

A node that fails while evaluated raises :class:`CaptureError` naming the node; whether the
input shape is at fault is decided by the caller (it runs the real model once to find out).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import torch
import torch.fx as fx
from torch import Tensor, nn
from torch.nn.utils.stateless import _reparametrize_module

#: Shape queries answered with concrete values while tracing.
_SHAPE_ATTRS = frozenset({"shape", "ndim", "dtype"})
_SHAPE_METHODS = frozenset({"size", "dim", "numel", "nelement"})


class CaptureError(Exception):
    """Evaluating one traced node failed; ``node`` names it, ``exc`` is what torch raised."""

    def __init__(self, node: fx.Node, exc: BaseException, label: tuple[str, str]) -> None:
        super().__init__(str(exc))
        self.node = node
        self.exc = exc
        #: (layer name, type name) of the node, for messages
        self.label = label


def to_meta(v: Any) -> Any:
    """``v`` with every tensor replaced by an empty meta tensor of the same shape and dtype."""
    if isinstance(v, Tensor):
        return torch.empty_like(v, device="meta")
    return v


class _ValuedProxy(fx.Proxy):
    """A proxy that answers shape queries with the concrete shape of its node's value."""

    def __getattr__(self, k: str) -> Any:
        tracer = self.tracer
        if isinstance(tracer, ShapeTracer) and self.node in tracer.values:
            value = tracer.values[self.node]
            if isinstance(value, Tensor) and (k in _SHAPE_ATTRS or k in _SHAPE_METHODS):
                return getattr(value, k)
        return super().__getattr__(k)

    def __len__(self) -> int:
        tracer = self.tracer
        if isinstance(tracer, ShapeTracer) and self.node in tracer.values:
            value = tracer.values[self.node]
            if isinstance(value, Tensor | tuple | list):
                return len(value)
        return super().__len__()

    def __iter__(self) -> Any:
        tracer = self.tracer
        if isinstance(tracer, ShapeTracer) and self.node in tracer.values:
            value = tracer.values[self.node]
            if isinstance(value, tuple | list):  # chunk / split results unpacked
                return iter([self[i] for i in range(len(value))])  # type: ignore[index]
        return super().__iter__()


class ShapeTracer(fx.Tracer):
    """An fx tracer that evaluates each node on meta tensors as it records it."""

    def __init__(self, input_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.input_shape = input_shape
        self.values: dict[fx.Node, Any] = {}

    def proxy(self, node: fx.Node) -> fx.Proxy:
        return _ValuedProxy(node, self)

    def _value(self, n: fx.Node) -> Any:
        if n not in self.values:  # get_attr nodes made by create_arg for buffers/constants
            if n.op != "get_attr":
                raise KeyError(n.name)
            self.values[n] = to_meta(fetch_attr(self.root, str(n.target)))
        return self.values[n]

    def create_proxy(self, kind: str, target: Any, args: tuple[Any, ...],
                     kwargs: dict[str, Any], name: str | None = None, type_expr: Any = None,
                     proxy_factory_fn: Callable[[fx.Node], fx.Proxy] | None = None) -> Any:
        proxy = super().create_proxy(kind, target, args, kwargs, name, type_expr,
                                     proxy_factory_fn)
        node: fx.Node = proxy.node
        try:
            value = self._evaluate(node)
        except CaptureError:
            raise
        except Exception as exc:
            raise CaptureError(node, exc, node_label(self.root, node)) from exc
        if _is_shape_query(node, value):  # a plain value, not part of the layer graph
            self.graph.erase_node(node)
            return value
        self.values[node] = value
        return proxy

    def _evaluate(self, node: fx.Node) -> Any:
        args = fx.node.map_arg(node.args, self._value)
        kwargs = fx.node.map_arg(node.kwargs, self._value)
        if node.op == "placeholder":
            return torch.empty(self.input_shape, device="meta")
        if node.op == "get_attr":
            return to_meta(fetch_attr(self.root, str(node.target)))
        with torch.no_grad():
            if node.op == "call_function":
                return node.target(*args, **kwargs)  # type: ignore[operator]
            if node.op == "call_method":
                return getattr(args[0], str(node.target))(*args[1:], **kwargs)
            if node.op == "call_module":
                mod = self.root.get_submodule(str(node.target))
                meta = {k: to_meta(v) for k, v in
                        list(mod.named_parameters()) + list(mod.named_buffers())}
                # forward, not __call__: the tracer has patched Module.__call__ to record
                with _reparametrize_module(mod, meta):
                    return mod.forward(*args, **kwargs)
        return None


def _is_shape_query(node: fx.Node, value: Any) -> bool:
    if node.op == "call_method" and node.target in _SHAPE_METHODS:
        return True
    if node.op == "call_function" and node.target is getattr:
        return node.args[1] in _SHAPE_ATTRS
    # an index into a shape made into a node (rare): keep it a plain value
    return (node.op == "call_function" and node.target is operator.getitem
            and isinstance(value, int | torch.Size))


def node_label(root: nn.Module, n: fx.Node) -> tuple[str, str]:
    """(layer name, type name) of an fx node, for messages."""
    if n.op == "call_module":
        return str(n.target), type(root.get_submodule(str(n.target))).__name__
    if n.op == "call_function":
        return n.name, getattr(n.target, "__name__", str(n.target))
    if n.op == "call_method":
        return n.name, f"Tensor.{n.target}"
    return n.name, n.op


def fetch_attr(root: nn.Module, target: str) -> Any:
    """The attribute ``target`` (dotted path) of ``root``."""
    obj: Any = root
    for part in target.split("."):
        # look in the module's own tables first: while tracing, the tracer has patched
        # Module.__getattr__ to record parameter reads
        for table in ("_modules", "_parameters", "_buffers"):
            entries = obj.__dict__.get(table) if isinstance(obj, nn.Module) else None
            if entries is not None and part in entries:
                obj = entries[part]
                break
        else:
            obj = getattr(obj, part)
    return obj


def capture(model: nn.Module, input_shape: tuple[int, ...]) -> tuple[fx.GraphModule,
                                                                       dict[str, Any]]:
    """Trace ``model`` for inputs of ``input_shape``; return the graph module and each node's
    meta value by node name. Raises :class:`CaptureError` for a node that fails to evaluate,
    and torch.fx's own errors for code it cannot trace (data-dependent control flow)."""
    tracer = ShapeTracer(input_shape)
    graph = tracer.trace(model)
    gm = fx.GraphModule(tracer.root, graph, type(model).__name__)
    values = {n.name: v for n, v in tracer.values.items()}
    for n in gm.graph.nodes:
        if n.name not in values and n.op == "get_attr":
            values[n.name] = to_meta(fetch_attr(gm, str(n.target)))
    return gm, values
