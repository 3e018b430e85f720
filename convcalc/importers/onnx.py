"""Read an ONNX model into a convcalc stack: `from_onnx(path)`.

Each node becomes the layer a YAML file would write (convcalc.importers.builder validates them all
the same way), a pass-through (Identity, Dropout, Cast on activations, a constant bias or scale), or a
constant when all its inputs are constants or convcalc's shapes (the Shape/Gather/Concat sub-graphs
exporters emit are folded with convcalc's own shapes, never ONNX's inferred ones). A node convcalc
cannot express is an error naming it; nothing is silently treated as the identity.

ONNX's defaults are not PyTorch's (pool strides 1, count_include_pad 0, DepthToSpace DCR), so every
field is written explicitly. Sizes in ONNX include the batch axis; convcalc's do not.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Final

from convcalc.errors import FileProblemError, Problem, SpecError
from convcalc.importers.builder import Builder, Doc, Imported, OnUnsupported, Unsupported
from convcalc.stack.spec import INPUT_NAME, InputSpec, StackSpec

#: The command that installs what reading ONNX files needs.
INSTALL: Final = "pip install 'convcalc[onnx]'"

Array = Any  # numpy arrays (numpy is imported lazily, with onnx)


@dataclass(frozen=True)
class _Pending:
    """A Reshape (and Transpose) of an activation waiting for the rest of a known pattern."""

    source: str  # the activation's layer
    dims: tuple[int, ...]  # the reshaped dims, batch included
    perm: tuple[int, ...] | None = None


@dataclass(frozen=True)
class _Dynamic:
    """A value computed from a size convcalc does not know (give the input size to fold it)."""

    node: str


@dataclass(frozen=True)
class _ChannelsLast:
    """An activation transposed to N×spatial×C, waiting for a LayerNormalization and the transpose back
    (what exporters make of ConvNeXt's LayerNorm2d)."""

    source: str


_Tensor = str | Array | _Pending | _Dynamic | _ChannelsLast

#: Ops whose output, on constant inputs, is computed here (the shape arithmetic exporters emit).
_FOLDABLE: Final = frozenset(
    {
        "Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Cast", "Slice", "Add", "Sub", "Mul", "Div",
        "Floor", "Ceil", "Sqrt", "ConstantOfShape", "Reshape", "Identity", "Range", "Equal", "Where",
        "Expand", "Min", "Max", "Neg", "Transpose", "ReduceProd", "Abs", "CastLike", "Flatten",
    }
)  # fmt: skip

#: Activations with a convcalc op of the same meaning (no fields).
_ACTIVATIONS: Final = {
    "Relu": "relu",
    "Sigmoid": "sigmoid",
    "Tanh": "tanh",
    "HardSwish": "hardswish",
    "Selu": "selu",
    "Mish": "mish",
}

#: Pass-throughs on activations: the output is the input (at inference).
_PASS: Final = frozenset({"Identity", "Dropout", "Cast", "CastLike"})

#: Resize / Upsample modes convcalc implements exactly: (mode, coordinate transform, nearest mode) →
#: (convcalc mode, align_corners).
_RESIZE: Final = {
    ("linear", "half_pixel", ""): ("linear", False),
    ("linear", "pytorch_half_pixel", ""): ("linear", False),
    ("linear", "align_corners", ""): ("linear", True),
    ("nearest", "asymmetric", "floor"): ("nearest", None),
    ("nearest", "half_pixel", "round_prefer_ceil"): ("nearest-exact", None),
    ("nearest", "pytorch_half_pixel", "round_prefer_ceil"): ("nearest-exact", None),
    ("cubic", "half_pixel", ""): ("bicubic", False),
    ("cubic", "align_corners", ""): ("bicubic", True),
}


def from_onnx(path: str | os.PathLike[str], input: InputSpec | None = None, output: str | None = None) -> StackSpec:
    """The ONNX model at `path` as a validated stack (see read_onnx)."""
    return read_onnx(path, input, output).stack


def read_onnx(
    path: str | os.PathLike[str],
    input: InputSpec | None = None,
    output: str | None = None,
    on_unsupported: OnUnsupported = "error",
) -> Imported:
    """The ONNX model at `path` as a validated stack, with each layer's origin.

    `input` fixes the input shape (channels and spatial sizes, no batch; it must have the model's rank);
    without it, symbolic sizes are unknown (None). `output` names the tensor to stop at (the stack ends
    there). An op convcalc cannot express raises SpecError naming the node, unless `on_unsupported` is
    "stop": the supported prefix is imported and `Imported.stopped` says where it stopped.
    FileProblemError when the file cannot be read or the onnx package is missing.
    """
    file = os.fspath(path)
    try:
        import onnx
    except ImportError:
        raise FileProblemError(
            Problem(f"reading ONNX files needs the onnx package: {INSTALL}", file, parameter=None)
        ) from None
    if not os.path.isfile(file):
        raise FileProblemError(Problem("no such file" if not os.path.exists(file) else "not a file", file))
    try:
        model = onnx.load(file)
    except Exception as exc:  # protobuf's DecodeError and friends: not an ONNX model
        raise FileProblemError(Problem(f"not an ONNX model: {exc}", file)) from None
    return _Importer(file, model, input, output, on_unsupported).run()


def _attrs(node: Any) -> dict[str, Any]:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    return str(value)


def _int_list(values: Any) -> list[int]:
    return [int(v) for v in values]


class _Importer:
    def __init__(
        self, file: str, model: Any, input: InputSpec | None, output: str | None, on_unsupported: OnUnsupported
    ) -> None:
        import numpy as np
        from onnx import numpy_helper

        self.np = np
        self.file = file
        self.graph = model.graph
        self.output = output
        self.on_unsupported = on_unsupported
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
        self.values: dict[str, _Tensor] = {}
        for init in self.graph.initializer:
            self.values[init.name] = numpy_helper.to_array(init)
        self.initializers = {init.name for init in self.graph.initializer}
        self.input_name, declared = self._graph_input()
        self.builder = Builder(file, self._input(declared, input))
        self.values[self.input_name] = INPUT_NAME
        self.uses: dict[str, int] = {}
        for node in self.graph.node:
            for name in node.input:
                self.uses[name] = self.uses.get(name, 0) + 1
        for out in self.graph.output:
            self.uses[out.name] = self.uses.get(out.name, 0) + 1
        self.consumers: dict[str, list[Any]] = {}
        for node in self.graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        #: Nodes a pattern already imported (by id): their output is that layer.
        self.absorbed: dict[int, str] = {}
        self.last_tensor = self.input_name  # the last activation tensor imported (for messages)
        self.producer: dict[str, Any] = {}  # tensor -> the node that produced it

    # ----------------------------------------------------------------- input

    def _graph_input(self) -> tuple[str, Any]:
        # IR < 4 lists initializers among the inputs: the activation input is the one that is not.
        candidates = [i for i in self.graph.input if i.name not in self.values]
        if len(candidates) != 1:
            names = ", ".join(i.name for i in candidates) or "none"
            raise SpecError(Problem(f"convcalc imports models with one input tensor; this one has {names}", self.file))
        return candidates[0].name, candidates[0]

    def _input(self, declared: Any, given: InputSpec | None) -> InputSpec:
        dims: list[int | None] = []
        tensor = declared.type.tensor_type
        for d in tensor.shape.dim:
            dims.append(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None)
        rank = len(dims) - 2
        if not 1 <= rank <= 3:
            raise SpecError(
                Problem(
                    f"the input '{declared.name}' has {len(dims)} axes; convcalc imports N×C×(1 to 3 spatial axes)",
                    self.file,
                    parameter="input" if given is not None else None,
                )
            )
        if given is not None:
            if given.rank != rank:
                raise SpecError(
                    Problem(
                        f"the model's input '{declared.name}' has {rank} spatial axes; give {rank} spatial sizes",
                        parameter="input",
                    )
                )
            if dims[1] is not None and given.channels != dims[1]:
                raise SpecError(
                    Problem(f"the model's input has {dims[1]} channels, not {given.channels}", parameter="input")
                )
            return given
        if dims[1] is None:
            raise SpecError(
                Problem(f"the input '{declared.name}' has an unknown channel count; give the input shape", self.file)
            )
        return InputSpec(dims[1], tuple(dims[2:]))

    # ----------------------------------------------------------------- the walk

    def run(self) -> Imported:
        stopped: str | None = None
        wanted: str | None = None
        if self.output is not None:
            known = {o for n in self.graph.node for o in n.output} | {self.input_name}
            if self.output not in known:
                raise SpecError(Problem(f"no tensor '{self.output}' in the model", self.file, parameter="output"))
        for index, node in enumerate(self.graph.node):
            name = node.name or f"#{index}"
            try:
                self._node(node, name)
            except Unsupported as exc:
                message = str(exc)
                if self.on_unsupported == "stop":
                    stopped = f"node '{name}' ({node.op_type}): {message}"
                    break
                raise SpecError(
                    Problem(
                        f"{message}; the last supported tensor is '{self.last_tensor}': import up to it with "
                        "output (or stop there with on_unsupported 'stop')",
                        self.builder.location(name, node.op_type).file,
                        parameter=None,
                    )
                ) from None
            if self.output is not None and self.output in node.output:
                wanted = self.output
                break
        if self.output == self.input_name:
            raise SpecError(Problem("the output tensor is the model's input: nothing to import", self.file))
        target = self.values.get(wanted) if wanted is not None else None
        if wanted is not None and not isinstance(target, str):
            raise SpecError(Problem(f"'{wanted}' is not an activation tensor", self.file, parameter="output"))
        return self.builder.result(stopped, target if isinstance(target, str) else None)

    def _describe(self, node: Any) -> str:
        attrs = ", ".join(f"{k}={_text(v)}" for k, v in _attrs(node).items() if not hasattr(v, "dims"))
        ins = ", ".join(f"'{i}'" for i in node.input if i)
        outs = ", ".join(f"'{o}'" for o in node.output)
        return f"attributes {{{attrs}}}, inputs {ins or 'none'}, outputs {outs}"

    def unsupported(self, node: Any, why: str) -> Unsupported:
        return Unsupported(f"{node.op_type} is not supported: {why} ({self._describe(node)})")

    def _node(self, node: Any, name: str) -> None:
        op = node.op_type
        if node.domain not in ("", "ai.onnx"):
            raise self.unsupported(node, f"an op of domain '{node.domain}'")
        ins = [self.values.get(i) if i else None for i in node.input]
        missing = [i for i, v in zip(node.input, ins, strict=True) if i and v is None]
        if missing:
            raise self.unsupported(node, f"it reads {', '.join(missing)}, which no supported node produced")
        if op == "Constant":
            self._set(node, 0, self._constant(node))
            return
        if id(node) in self.absorbed:
            self._set(node, 0, self.absorbed[id(node)])
            return
        acts = [v for v in ins if isinstance(v, str)]
        if op == "Shape" and (acts or isinstance(ins[0], (_Pending, _ChannelsLast))):
            first: Any = ins[0]
            self._set(node, 0, self._shape_value(node, first))
            return
        if op == "CastLike" and not isinstance(ins[0], str) and not isinstance(ins[0], _Pending):
            # A constant cast to the activation's type (float): still the constant.
            self._set(node, 0, ins[0] if isinstance(ins[0], _Dynamic) else self.np.asarray(ins[0], self.np.float32))
            return
        if not acts and not any(isinstance(v, (_Pending, _ChannelsLast)) for v in ins):
            if any(isinstance(v, _Dynamic) for v in ins):
                self._set(node, 0, next(v for v in ins if isinstance(v, _Dynamic)))
                return
            if op in _FOLDABLE:
                self._set(node, 0, self._fold(node, ins))
                return
            raise self.unsupported(node, "a computation on constants convcalc does not fold")
        handler = getattr(self, f"_op_{op}", None)
        if handler is None:
            raise self.unsupported(node, "convcalc has no op for it")
        handler(node, name, ins)

    def _set(self, node: Any, index: int, value: _Tensor) -> None:
        out = node.output[index]
        self.values[out] = value
        self.producer[out] = node
        if isinstance(value, str):
            self.last_tensor = out
            if value != INPUT_NAME:
                self.builder.tensors[value] = out

    def _emit(
        self, node: Any, name: str, op: str, inputs: list[str], fields: dict[str, object], module: str | None = None
    ) -> str:
        base = module if module is not None else self._module(node) or op
        doc = Doc(
            self.builder.unique(base),
            op,
            inputs,
            fields,
            f"{node.op_type} {name}",
            self.builder.location(name, node.op_type),
        )
        return self.builder.add(doc)

    def _module(self, node: Any) -> str | None:
        """The module path the node came from: dynamo's name scopes, else the legacy exporter's node name
        (`/layer1/layer1.0/conv1/Conv` → `layer1.0.conv1`)."""
        for prop in node.metadata_props:
            if prop.key == "pkg.torch.onnx.name_scopes":
                # ['', 'stem', 'stem.0', 'conv2d']: module paths, then the fx node's name
                scopes = [s.strip(" '\"") for s in prop.value.strip("[]").split(",")]
                modules = [s for s in scopes[:-1] if s]
                return str(modules[-1]) if modules else (str(scopes[-1]) or None)
        parts = [p for p in node.name.split("/") if p]
        if len(parts) >= 2:
            return str(parts[-2])
        if node.name and not node.name.startswith("/"):
            return str(node.name)  # a name its writer chose (legacy top-level ops are `/Add`: no module)
        return None

    def _fused(self, node: Any) -> None:
        """An info note when the exporter folded a BatchNorm into this conv: its params are not the module's."""
        for prop in node.metadata_props:
            if prop.key == "pkg.onnxscript.rewriter.rule_name" and "FuseBatchNormIntoConv" in prop.value:
                self.builder.notes.append(
                    f"node '{node.name}': the exporter fused a BatchNorm into this conv, so the params are not the "
                    "module's (export with optimize=False, or import the torch module, to keep it)"
                )

    def _act(self, node: Any, value: _Tensor, what: str = "its input") -> str:
        if not isinstance(value, str):
            raise self.unsupported(node, f"{what} is not an activation convcalc imported")
        return value

    def _const(self, node: Any, value: _Tensor, what: str) -> Array:
        if isinstance(value, _Dynamic):
            raise self.unsupported(
                node,
                f"{what} depends on a size convcalc does not know (computed by '{value.node}'); give the input size",
            )
        if isinstance(value, (str, _Pending)) or value is None:
            raise self.unsupported(node, f"{what} must be a constant")
        return value

    def _rank(self, act: str) -> int:
        return len(self.builder.shape(act).spatial)

    # ----------------------------------------------------------------- constants and shapes

    def _constant(self, node: Any) -> Array:
        from onnx import numpy_helper

        attrs = _attrs(node)
        np = self.np
        if "value" in attrs:
            return numpy_helper.to_array(attrs["value"])
        for key, dtype in (("value_float", np.float32), ("value_int", np.int64)):
            if key in attrs:
                return np.array(attrs[key], dtype=dtype)
        for key, dtype in (("value_floats", np.float32), ("value_ints", np.int64)):
            if key in attrs:
                return np.array(list(attrs[key]), dtype=dtype)
        raise self.unsupported(node, "a Constant of a kind convcalc does not read")

    def _shape_value(self, node: Any, source: str | _Pending | _ChannelsLast) -> Array | _Dynamic:
        dims: list[int | None]
        if isinstance(source, _Pending):
            order = source.perm or tuple(range(len(source.dims)))
            dims = [source.dims[i] for i in order]
        elif isinstance(source, _ChannelsLast):
            shape = self.builder.shape(source.source)
            dims = [1, *shape.spatial, shape.channels]
        else:
            shape = self.builder.shape(source)
            dims = [1, shape.channels, *shape.spatial]  # convcalc analyses batch 1
        if any(d is None for d in dims):
            return _Dynamic(node.name or node.op_type)
        value = self.np.array(dims, dtype=self.np.int64)
        attrs = _attrs(node)
        start, end = attrs.get("start", 0), attrs.get("end", len(dims))
        return value[start:end]

    def _fold(self, node: Any, ins: list[Any]) -> Array:
        """A shape computation on constants, evaluated with onnx's reference implementation."""
        import onnx
        from onnx.reference import ReferenceEvaluator

        names = [f"i{k}" for k in range(len(ins))]
        inputs = [
            onnx.helper.make_tensor_value_info(n, onnx.helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
            for n, v in zip(names, ins, strict=True)
            if v is not None
        ]
        copy = onnx.helper.make_node(
            node.op_type, [n if v is not None else "" for n, v in zip(names, ins, strict=True)], ["o"]
        )
        copy.attribute.extend(node.attribute)
        graph = onnx.helper.make_graph([copy], "fold", inputs, [onnx.helper.make_value_info("o", onnx.TypeProto())])
        model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", self.opset)])
        try:
            result = ReferenceEvaluator(model).run(
                None, {n: v for n, v in zip(names, ins, strict=True) if v is not None}
            )
        except Exception as exc:
            raise self.unsupported(node, f"its constant inputs could not be folded ({exc})") from None
        return self.np.asarray(next(iter(result)))

    # ----------------------------------------------------------------- convolution

    def _pairs(self, node: Any, pads: list[int], rank: int) -> list[list[int]]:
        if len(pads) != 2 * rank:
            raise self.unsupported(node, f"pads has {len(pads)} values for {rank} spatial axes")
        return [[pads[i], pads[i + rank]] for i in range(rank)]

    def _auto_pad(self, attrs: dict[str, Any]) -> str:
        return _text(attrs.get("auto_pad", "NOTSET"))

    def _op_Conv(self, node: Any, name: str, ins: list[Any]) -> None:
        x = self._act(node, ins[0])
        w = self._const(node, ins[1], "the weight")
        attrs = _attrs(node)
        rank = w.ndim - 2
        group = int(attrs.get("group", 1))
        fields: dict[str, object] = {"out": int(w.shape[0]), "kernel": _int_list(w.shape[2:])}
        fields["stride"] = _int_list(attrs.get("strides", [1] * rank))
        auto = self._auto_pad(attrs)
        padding: object
        if auto == "SAME_UPPER":
            padding = "same"
        elif auto == "SAME_LOWER":
            padding = "same_lower"
        elif auto == "VALID":
            padding = "valid"
        else:
            padding = self._pairs(node, _int_list(attrs.get("pads", [0] * 2 * rank)), rank)
        if isinstance(padding, list):
            x, padding, mode = self.builder.fold_pad(x, padding, self.uses.get(node.input[0], 0) == 1)
            if mode is not None:
                fields["padding_mode"] = mode
        fields["padding"] = padding
        fields["dilation"] = _int_list(attrs.get("dilations", [1] * rank))
        fields["groups"] = group
        fields["bias"] = self._bias(node, ins)
        self._fused(node)
        self._set(node, 0, self._emit(node, name, "conv", [x], fields))

    def _bias(self, node: Any, ins: list[Any]) -> bool:
        """A bias input that is a stored tensor, or a computed non-zero one (exporters compute zero biases
        for bias=False convs: Shape/Expand of a 0)."""
        if len(node.input) < 3 or not node.input[2]:
            return False
        value = ins[2]
        return node.input[2] in self.initializers or not isinstance(value, self.np.ndarray) or bool(value.any())

    def _op_ConvTranspose(self, node: Any, name: str, ins: list[Any]) -> None:
        x = self._act(node, ins[0])
        w = self._const(node, ins[1], "the weight")
        attrs = _attrs(node)
        rank = w.ndim - 2
        group = int(attrs.get("group", 1))
        kernel = _int_list(w.shape[2:])
        stride = _int_list(attrs.get("strides", [1] * rank))
        dilation = _int_list(attrs.get("dilations", [1] * rank))
        output_padding = _int_list(attrs.get("output_padding", [0] * rank))
        auto = self._auto_pad(attrs)
        if "output_shape" in attrs or auto in ("SAME_UPPER", "SAME_LOWER"):
            sizes = self.builder.shape(x).spatial
            if any(s is None for s in sizes):
                raise self.unsupported(node, "its padding depends on the input size; give the input size")
            wanted = (
                _int_list(attrs["output_shape"])[-rank:]
                if "output_shape" in attrs
                else [int(s or 0) * st for s, st in zip(sizes, stride, strict=True)]
            )
            pairs = []
            for i in range(rank):
                size = sizes[i]
                assert size is not None
                total = stride[i] * (size - 1) + output_padding[i] + dilation[i] * (kernel[i] - 1) + 1 - wanted[i]
                if total < 0:
                    raise self.unsupported(node, f"its output_shape is larger than the full output ({total} padding)")
                half = total // 2
                pairs.append([half, total - half] if auto == "SAME_UPPER" else [total - half, half])
        elif auto == "VALID":
            pairs = [[0, 0] for _ in range(rank)]
        else:
            pairs = self._pairs(node, _int_list(attrs.get("pads", [0] * 2 * rank)), rank)
        symmetric = [min(p) for p in pairs]
        fields: dict[str, object] = {
            "out": int(w.shape[1]) * group,
            "kernel": kernel,
            "stride": stride,
            "padding": symmetric,
            "output_padding": output_padding,
            "dilation": dilation,
            "groups": group,
            "bias": self._bias(node, ins),
        }
        out = self._emit(node, name, "deconv", [x], fields)
        crop = [[m - a, m - b] for (a, b), m in zip(pairs, symmetric, strict=True)]
        if any(c != [0, 0] for c in crop):
            # ONNX crops [before, after] separately; PyTorch's ConvTranspose crops both ends alike.
            out = self._emit(node, name, "pad", [out], {"padding": crop}, module=f"{out}.crop")
        self._set(node, 0, out)

    # ----------------------------------------------------------------- pooling

    def _pool_padding(self, node: Any, attrs: dict[str, Any], rank: int) -> object:
        auto = self._auto_pad(attrs)
        if auto == "SAME_UPPER":
            return "same"
        if auto == "SAME_LOWER":
            return "same_lower"
        if auto == "VALID":
            return 0
        return self._pairs(node, _int_list(attrs.get("pads", [0] * 2 * rank)), rank)

    def _op_MaxPool(self, node: Any, name: str, ins: list[Any]) -> None:
        x = self._act(node, ins[0])
        attrs = _attrs(node)
        if len(node.output) > 1 and node.output[1] and self.uses.get(node.output[1], 0):
            raise self.unsupported(node, "its indices output is used (MaxUnpool)")
        kernel = _int_list(attrs["kernel_shape"])
        rank = len(kernel)
        if int(attrs.get("storage_order", 0)) != 0:
            raise self.unsupported(node, "storage_order 1 (column major indices)")
        fields: dict[str, object] = {
            "kernel": kernel,
            "stride": _int_list(attrs.get("strides", [1] * rank)),  # ONNX's default is 1, PyTorch's the kernel
            "padding": self._pool_padding(node, attrs, rank),
            "dilation": _int_list(attrs.get("dilations", [1] * rank)),
            "ceil_mode": bool(attrs.get("ceil_mode", 0)),
        }
        self._set(node, 0, self._emit(node, name, "maxpool", [x], fields))

    def _op_AveragePool(self, node: Any, name: str, ins: list[Any]) -> None:
        x = self._act(node, ins[0])
        attrs = _attrs(node)
        kernel = _int_list(attrs["kernel_shape"])
        rank = len(kernel)
        if any(d != 1 for d in attrs.get("dilations", [1] * rank)):
            raise self.unsupported(node, "average pooling with dilations (PyTorch's AvgPool has none)")
        fields: dict[str, object] = {
            "kernel": kernel,
            "stride": _int_list(attrs.get("strides", [1] * rank)),
            "padding": self._pool_padding(node, attrs, rank),
            "ceil_mode": bool(attrs.get("ceil_mode", 0)),
            "count_include_pad": bool(attrs.get("count_include_pad", 0)),  # ONNX's default 0, PyTorch's True
        }
        self._set(node, 0, self._emit(node, name, "avgpool", [x], fields))

    def _global(self, node: Any, name: str, ins: list[Any], op: str) -> None:
        x = self._act(node, ins[0])
        self._set(node, 0, self._emit(node, name, op, [x], {"size": 1}))

    def _op_GlobalAveragePool(self, node: Any, name: str, ins: list[Any]) -> None:
        self._global(node, name, ins, "adaptive_avgpool")

    def _op_GlobalMaxPool(self, node: Any, name: str, ins: list[Any]) -> None:
        self._global(node, name, ins, "adaptive_maxpool")

    def _reduce(self, node: Any, name: str, ins: list[Any], op: str) -> None:
        x = self._act(node, ins[0])
        attrs = _attrs(node)
        if "axes" in attrs:
            axes = _int_list(attrs["axes"])
        elif len(ins) > 1 and ins[1] is not None:
            axes = _int_list(self._const(node, ins[1], "axes"))
        else:
            axes = []
        rank = self._rank(x)
        full = rank + 2
        if sorted(a % full for a in axes) != list(range(2, full)):
            raise self.unsupported(node, "a reduction over other axes than all the spatial ones")
        out = self._emit(node, name, op, [x], {"size": 1})
        if not int(attrs.get("keepdims", 1)):
            out = self._emit(node, name, "flatten", [out], {})
        self._set(node, 0, out)

    def _op_ReduceMean(self, node: Any, name: str, ins: list[Any]) -> None:
        self._reduce(node, name, ins, "adaptive_avgpool")

    def _op_ReduceMax(self, node: Any, name: str, ins: list[Any]) -> None:
        self._reduce(node, name, ins, "adaptive_maxpool")

    # ----------------------------------------------------------------- resampling

    def _op_Upsample(self, node: Any, name: str, ins: list[Any]) -> None:
        self._resize(node, name, ins, upsample=True)

    def _op_Resize(self, node: Any, name: str, ins: list[Any]) -> None:
        self._resize(node, name, ins, upsample=False)

    def _resize(self, node: Any, name: str, ins: list[Any], upsample: bool) -> None:
        x = self._act(node, ins[0])
        attrs = _attrs(node)
        mode = _text(attrs.get("mode", "nearest"))
        legacy = upsample or self.opset < 11  # Upsample and opset-10 Resize are asymmetric
        transform = "asymmetric" if legacy else _text(attrs.get("coordinate_transformation_mode", "half_pixel"))
        nearest = _text(attrs.get("nearest_mode", "round_prefer_floor")) if mode == "nearest" else ""
        if legacy and mode == "nearest":
            nearest = "floor"
        if int(attrs.get("antialias", 0)):
            raise self.unsupported(node, "antialias=1 (an antialiasing filter convcalc does not implement)")
        if mode == "cubic" and float(attrs.get("cubic_coeff_a", -0.75)) != -0.75:
            raise self.unsupported(node, "cubic_coeff_a other than -0.75 (PyTorch's bicubic)")
        mapped = _RESIZE.get((mode, transform, nearest))
        if mapped is None or not self._upsample_mode(mapped[0]):
            raise self.unsupported(
                node,
                f"mode '{mode}' with coordinate_transformation_mode '{transform}'"
                + (f" and nearest_mode '{nearest}'" if nearest else "")
                + " is not one convcalc's upsample computes exactly",
            )
        rank = self._rank(x)
        if "axes" in attrs:
            raise self.unsupported(node, "the axes attribute")
        if "keep_aspect_ratio_policy" in attrs and _text(attrs["keep_aspect_ratio_policy"]) != "stretch":
            raise self.unsupported(node, "keep_aspect_ratio_policy other than 'stretch'")
        if upsample:
            scales_in = attrs.get("scales") if "scales" in attrs else (ins[1] if len(ins) > 1 else None)
            sizes_in = None
        elif self.opset < 11:
            scales_in, sizes_in = (ins[1] if len(ins) > 1 else None), None
        else:
            scales_in = ins[2] if len(ins) > 2 else None
            sizes_in = ins[3] if len(ins) > 3 else None
        fields: dict[str, object] = {}
        scales = None if scales_in is None else self._const(node, scales_in, "scales")
        if scales is not None and getattr(scales, "size", len(scales)) > 0:
            values = [float(s) for s in list(scales)]
            if len(values) != rank + 2 or values[0] != 1 or values[1] != 1:
                raise self.unsupported(node, f"scales {values}: only the spatial axes may be resized")
            fields["scale"] = [int(v) if v.is_integer() else v for v in values[2:]]
        elif sizes_in is not None:
            sizes = _int_list(self._const(node, sizes_in, "sizes"))
            shape = self.builder.shape(x)
            if len(sizes) != rank + 2 or sizes[1] != shape.channels:
                raise self.unsupported(node, f"sizes {sizes}: only the spatial axes may be resized")
            fields["size"] = sizes[2:]
            if transform == "pytorch_half_pixel" and 1 in sizes[2:]:
                self.builder.notes.append(
                    f"node '{name}': pytorch_half_pixel at output length 1 reads index 0, PyTorch the centre"
                )
        else:
            raise self.unsupported(node, "neither scales nor sizes")
        fields["mode"] = mapped[0]
        if mapped[1] is not None:
            fields["align_corners"] = mapped[1]
        self._set(node, 0, self._emit(node, name, "upsample", [x], fields))

    def _upsample_mode(self, mode: str) -> bool:
        from convcalc.ops import registry

        op = registry.OPS["upsample"]
        kind = next(f.kind for f in op.fields if f.name == "mode")
        return mode in getattr(kind, "choices", ())

    def _op_DepthToSpace(self, node: Any, name: str, ins: list[Any]) -> None:
        x = self._act(node, ins[0])
        attrs = _attrs(node)
        mode = _text(attrs.get("mode", "DCR"))
        if mode != "CRD":
            self.builder.notes.append(
                f"node '{name}': DepthToSpace mode {mode} orders channels as TensorFlow does, not as "
                "pixel_shuffle; shapes and fields are the same"
            )
        self._set(node, 0, self._emit(node, name, "pixel_shuffle", [x], {"factor": int(attrs["blocksize"])}))

    def _op_SpaceToDepth(self, node: Any, name: str, ins: list[Any]) -> None:
        x = self._act(node, ins[0])
        attrs = _attrs(node)
        self.builder.notes.append(
            f"node '{name}': SpaceToDepth orders channels as TensorFlow does, not as pixel_unshuffle; "
            "shapes and fields are the same"
        )
        self._set(node, 0, self._emit(node, name, "pixel_unshuffle", [x], {"factor": int(attrs["blocksize"])}))

    def _op_Pad(self, node: Any, name: str, ins: list[Any]) -> None:
        x = self._act(node, ins[0])
        attrs = _attrs(node)
        rank = self._rank(x)
        pads = _int_list(attrs["pads"]) if "pads" in attrs else _int_list(self._const(node, ins[1], "pads"))
        if len(ins) > 3 and ins[3] is not None:
            axes = [a % (rank + 2) for a in _int_list(self._const(node, ins[3], "axes"))]
            full = [0] * (2 * (rank + 2))
            for k, a in enumerate(axes):
                full[a], full[a + rank + 2] = pads[k], pads[k + len(axes)]
            pads = full
        n = rank + 2
        if len(pads) != 2 * n:
            raise self.unsupported(node, f"pads has {len(pads)} values for {n} axes")
        if pads[0] or pads[1] or pads[n] or pads[n + 1]:
            raise self.unsupported(node, "padding on the batch or channel axis")
        mode = {"constant": "constant", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}.get(
            _text(attrs.get("mode", "constant"))
        )
        if mode is None:
            raise self.unsupported(node, f"mode '{_text(attrs.get('mode'))}'")
        fields: dict[str, object] = {"padding": [[pads[i + 2], pads[i + 2 + n]] for i in range(rank)], "mode": mode}
        value = attrs.get("value")
        if value is None and len(ins) > 2 and ins[2] is not None:
            value = float(self._const(node, ins[2], "constant_value"))
        if mode == "constant" and value:
            fields["value"] = float(value)
        self._set(node, 0, self._emit(node, name, "pad", [x], fields))

    def _op_Slice(self, node: Any, name: str, ins: list[Any]) -> None:
        x = self._act(node, ins[0])
        attrs = _attrs(node)
        if "starts" in attrs:
            starts, ends = _int_list(attrs["starts"]), _int_list(attrs["ends"])
            axes = _int_list(attrs.get("axes", range(len(starts))))
            steps = [1] * len(starts)
        else:
            starts = _int_list(self._const(node, ins[1], "starts"))
            ends = _int_list(self._const(node, ins[2], "ends"))
            axes = (
                _int_list(self._const(node, ins[3], "axes"))
                if len(ins) > 3 and ins[3] is not None
                else list(range(len(starts)))
            )
            steps = (
                _int_list(self._const(node, ins[4], "steps"))
                if len(ins) > 4 and ins[4] is not None
                else [1] * len(starts)
            )
        shape = self.builder.shape(x)
        rank = len(shape.spatial)
        dims = [1, shape.channels, *shape.spatial]
        crop = [[0, 0] for _ in range(rank)]
        channels: list[int] | None = None
        for a, s, e, st in zip(axes, starts, ends, steps, strict=True):
            a %= rank + 2
            size = dims[a]
            if st != 1:
                raise self.unsupported(node, f"a step of {st}")
            if size is None:
                raise self.unsupported(node, "a slice of an axis of unknown size; give the input size")
            lo, hi, _ = slice(s, e).indices(size)
            if a == 0:
                if (lo, hi) != (0, size):
                    raise self.unsupported(node, "a slice of the batch axis")
            elif a == 1:
                channels = [lo, hi]
            else:
                crop[a - 2] = [-lo, -(size - max(hi, lo))]
        layer = x
        if any(c != [0, 0] for c in crop):
            layer = self._emit(node, name, "pad", [layer], {"padding": crop})
        if channels is not None and channels != [0, shape.channels]:
            if not self.builder.has_op("slice"):
                raise self.unsupported(node, "a slice of channels (convcalc has no slice op yet)")
            layer = self._emit(node, name, "slice", [layer], {"channels": channels})
        self._set(node, 0, layer)

    def _op_Split(self, node: Any, name: str, ins: list[Any]) -> None:
        x = self._act(node, ins[0])
        attrs = _attrs(node)
        if int(attrs.get("axis", 0)) % (self._rank(x) + 2) != 1:
            raise self.unsupported(node, "a split of another axis than channels")
        if not self.builder.has_op("split"):
            raise self.unsupported(node, "a split of channels (convcalc has no split op yet)")
        channels = self.builder.shape(x).channels
        if "split" in attrs:
            sizes = _int_list(attrs["split"])
        elif len(ins) > 1 and ins[1] is not None:
            sizes = _int_list(self._const(node, ins[1], "split"))
        else:
            count = int(attrs.get("num_outputs", len(node.output)))
            if channels is None:
                raise self.unsupported(node, "an even split of an unknown channel count")
            each = -(-channels // count)
            sizes = [min(each, channels - k * each) for k in range(count)]
        layer = self._emit(node, name, "split", [x], {"sizes": sizes})
        for k in range(len(node.output)):
            self._set(node, k, f"{layer}.{k}")

    # ----------------------------------------------------------------- merges

    def _op_Concat(self, node: Any, name: str, ins: list[Any]) -> None:
        acts = [self._act(node, v, "every input") for v in ins]
        axis = int(_attrs(node).get("axis", 1))
        if axis % (self._rank(acts[0]) + 2) != 1:
            raise self.unsupported(node, "a concatenation along another axis than channels")
        self._set(node, 0, self._emit(node, name, "concat", acts, {}))

    def _binary(self, node: Any, name: str, ins: list[Any], op: str | None) -> None:
        acts = [v for v in ins if isinstance(v, str)]
        if len(acts) == len(ins) and len(acts) >= 2:
            if op is None:
                raise self.unsupported(node, f"{node.op_type} of two activations")
            if not self.builder.has_op(op):
                raise self.unsupported(node, f"{node.op_type} of two activations (convcalc has no '{op}' op yet)")
            if op == "mul" and self._silu(node, acts):
                return
            self._set(node, 0, self._emit(node, name, op, acts, {}))
            return
        if len(acts) != 1:
            raise self.unsupported(node, "its inputs are not activations or constants")
        x = acts[0]
        other = next(v for v in ins if not isinstance(v, str))
        const = self._const(node, other, "the other operand")
        shape = self.builder.shape(x)
        dims = [1, shape.channels, *shape.spatial]
        # A constant operand that does not widen the activation is a bias, scale or normalisation.
        cshape = list(const.shape)
        if len(cshape) > len(dims) or any(
            c != 1 and c != d for c, d in zip(reversed(cshape), reversed(dims), strict=False)
        ):
            raise self.unsupported(node, f"a constant of shape {cshape} that would broadcast the activation")
        if node.op_type == "Add" and self._linear_bias(node, x, const):
            return
        if node.op_type == "Div" and ins[0] is other:
            raise self.unsupported(node, "a constant divided by an activation")
        self._set(node, 0, x)

    def _op_Add(self, node: Any, name: str, ins: list[Any]) -> None:
        self._binary(node, name, ins, "add")

    def _op_Sum(self, node: Any, name: str, ins: list[Any]) -> None:
        self._binary(node, name, ins, "add")

    def _op_Sub(self, node: Any, name: str, ins: list[Any]) -> None:
        self._binary(node, name, ins, "sub")

    def _op_Mul(self, node: Any, name: str, ins: list[Any]) -> None:
        self._binary(node, name, ins, "mul")

    def _op_Div(self, node: Any, name: str, ins: list[Any]) -> None:
        self._binary(node, name, ins, None)

    def _silu(self, node: Any, acts: list[str]) -> bool:
        """x·Sigmoid(x): the sigmoid layer becomes `silu` (what exporters make of nn.SiLU)."""
        for a, b in ((acts[0], acts[1]), (acts[1], acts[0])):
            doc = self.builder.doc(b)
            sig_tensor = next((i for i in node.input if self.values.get(i) == b), None)
            if (
                doc is not None
                and doc.op == "sigmoid"
                and doc.inputs == [a]
                and self.uses.get(sig_tensor or "", 0) == 1
            ):
                doc.op = "silu"
                doc.origin += f" + {node.op_type} {node.name}"
                self.builder.touched()
                self._set(node, 0, b)
                return True
        return False

    def _linear_bias(self, node: Any, x: str, const: Array) -> bool:
        """MatMul + Add of a constant: the bias of the linear layer."""
        doc = self.builder.doc(x)
        tensor = node.input[0] if self.values.get(node.input[0]) == x else node.input[1]
        if doc is None or doc.op != "linear" or doc.fields.get("bias") or self.uses.get(tensor, 0) != 1:
            return False
        if const.size != doc.fields["out"]:
            return False
        doc.fields["bias"] = True
        doc.origin += f" + {node.op_type} {node.name}"
        self.builder.touched()
        self._set(node, 0, x)
        return True

    # ----------------------------------------------------------------- dense

    def _op_Flatten(self, node: Any, name: str, ins: list[Any]) -> None:
        x = self._act(node, ins[0])
        if int(_attrs(node).get("axis", 1)) != 1:
            raise self.unsupported(node, "a flatten from another axis than 1")
        self._set(node, 0, self._flatten(node, name, x))

    def _flatten(self, node: Any, name: str, x: str) -> str:
        if not self.builder.shape(x).spatial:
            return x  # already features
        return self._emit(node, name, "flatten", [x], {})

    def _op_Reshape(self, node: Any, name: str, ins: list[Any]) -> None:
        target = _int_list(self._const(node, ins[1], "the target shape"))
        source = ins[0]
        if isinstance(source, _Pending) and source.perm is None:
            source = source.source  # a reshape of a reshape: of the original
        if isinstance(source, _Pending):
            self._set(node, 0, self._pattern(node, name, source, target))
            return
        x = self._act(node, source)
        shape = self.builder.shape(x)
        if shape.channels is None or None in shape.spatial:
            raise self.unsupported(node, "a reshape of a tensor of unknown size; give the input size")
        dims = [1, shape.channels, *(int(s or 0) for s in shape.spatial)]
        total = math.prod(dims)
        resolved = [dims[i] if t == 0 and i < len(dims) else t for i, t in enumerate(target)]
        if resolved.count(-1) == 1:
            known = math.prod(t for t in resolved if t != -1)
            resolved[resolved.index(-1)] = total // known if known else 0
        if resolved == dims:
            self._set(node, 0, x)  # a reshape to the shape it has
            return
        if len(resolved) == 2 and resolved[0] == 1 and resolved[1] == total // 1:
            self._set(node, 0, self._flatten(node, name, x))
            return
        if len(resolved) > 2 and resolved[0] == 1 and math.prod(resolved) == total:
            self._set(node, 0, _Pending(x, tuple(int(r) for r in resolved)))  # wait for Transpose + Reshape
            return
        raise self.unsupported(node, f"a reshape of {dims} to {resolved} (convcalc reshapes only to [N, -1])")

    def _op_Transpose(self, node: Any, name: str, ins: list[Any]) -> None:
        source = ins[0]
        if isinstance(source, _Pending) and source.perm is None:
            perm = tuple(_int_list(_attrs(node).get("perm", reversed(range(len(source.dims))))))
            self._set(node, 0, _Pending(source.source, source.dims, perm))
            return
        perm = tuple(_int_list(_attrs(node).get("perm", [])))
        if isinstance(source, str):
            full = self._rank(source) + 2
            if perm == (0, *range(2, full), 1):
                self._set(node, 0, _ChannelsLast(source))  # channels last: a LayerNorm2d should follow
                return
        if isinstance(source, _ChannelsLast):
            full = self._rank(source.source) + 2
            if perm == (0, full - 1, *range(1, full - 1)):
                self._set(node, 0, source.source)  # channels first again
                return
        raise self.unsupported(
            node, "a transpose outside the pixel_unshuffle, channel-shuffle and channels-last LayerNorm patterns"
        )

    def _op_LayerNormalization(self, node: Any, name: str, ins: list[Any]) -> None:
        source = ins[0]
        axis = int(_attrs(node).get("axis", -1))
        if not isinstance(source, _ChannelsLast):
            raise self.unsupported(node, "a LayerNormalization outside Transpose → LayerNormalization → Transpose")
        full = self._rank(source.source) + 2
        if axis % full != full - 1:
            raise self.unsupported(node, "a LayerNormalization over more axes than the channels")
        if not self.builder.has_op("layernorm"):
            raise self.unsupported(node, "convcalc has no 'layernorm' op yet")
        eps = float(_attrs(node).get("epsilon", 1e-5))
        # elementwise_affine: a stored bias (without it, legacy writes Constant ones and zeros, dynamo no bias).
        affine = len(node.input) > 2 and self._stored(node.input[2])
        layer = self._emit(node, name, "layernorm", [source.source], {"eps": eps, "elementwise_affine": affine})
        self._set(node, 0, _ChannelsLast(layer))

    def _op_InstanceNormalization(self, node: Any, name: str, ins: list[Any]) -> None:
        """Reshape to [N, G, -1] → InstanceNormalization → Reshape back (→ Mul → Add): GroupNorm, as both
        torch exporters write nn.GroupNorm."""
        p = ins[0]
        if not (isinstance(p, _Pending) and p.perm is None and len(p.dims) == 3):
            raise self.unsupported(node, "an InstanceNormalization outside the GroupNorm pattern")
        if not self.builder.has_op("groupnorm"):
            raise self.unsupported(node, "convcalc has no 'groupnorm' op yet")
        eps = float(_attrs(node).get("epsilon", 1e-5))
        # GroupNorm's affine weight and bias are the Mul and Add after the reshape back (the
        # InstanceNormalization's own scale and bias are ones and zeros per group).
        # (Legacy exports affine=False with Mul and Add of Constant ones and zeros: the weight must be stored.
        # Dynamo's optimizer folds those into stored tensors too, which then import as affine.)
        back = self._next(node.output[0], "Reshape")
        mul = None if back is None else self._next(back.output[0], "Mul")
        weight = None if mul is None else next((i for i in mul.input if back is not None and i != back.output[0]), None)
        affine = mul is not None and self._next(mul.output[0], "Add") is not None and self._stored(weight)
        fields: dict[str, object] = {"groups": p.dims[1], "eps": eps, "affine": affine}
        layer = self._emit(node, name, "groupnorm", [p.source], fields)
        self._set(node, 0, _Pending(layer, p.dims))  # still grouped: the Reshape back makes it the layer

    def _pattern(self, node: Any, name: str, p: _Pending, target: list[int]) -> str:
        """Reshape → Transpose → Reshape: pixel_unshuffle, pixel_shuffle or a channel shuffle."""
        shape = self.builder.shape(p.source)
        dims = [1, int(shape.channels or 0), *(int(s or 0) for s in shape.spatial)]  # known: p was reshaped
        d = p.dims
        final = [dims[i] if t == 0 and i < len(dims) else t for i, t in enumerate(target)]
        if final.count(-1) == 1:
            rest = math.prod(t for t in final if t != -1)
            final[final.index(-1)] = math.prod(d) // rest
        if p.perm == (0, 1, 3, 5, 2, 4) and len(d) == 6 and d[3] == d[5]:
            r = d[3]
            if final == [1, d[1] * r * r, d[2], d[4]]:
                return self._emit(node, name, "pixel_unshuffle", [p.source], {"factor": r})
        if p.perm == (0, 1, 4, 2, 5, 3) and len(d) == 6 and d[2] == d[3]:
            r = d[2]
            if final == [1, d[1], d[4] * r, d[5] * r]:
                return self._emit(node, name, "pixel_shuffle", [p.source], {"factor": r})
        if p.perm == (0, 2, 1, 3, 4) and len(d) == 5 and final == dims:
            if self.builder.has_op("channel_shuffle"):
                return self._emit(node, name, "channel_shuffle", [p.source], {"groups": d[1]})
            self.builder.notes.append(
                f"node '{name}': a channel shuffle ({d[1]} groups) imported as identity: shapes and fields are "
                "the same, the channel order is not"
            )
            return self._emit(node, name, "identity", [p.source], {})
        raise self.unsupported(
            node, f"a reshape/transpose sequence ({list(d)}, perm {list(p.perm or ())}, {final}) of no known pattern"
        )

    def _op_Gemm(self, node: Any, name: str, ins: list[Any]) -> None:
        x = self._act(node, ins[0])
        w = self._const(node, ins[1], "the weight")
        attrs = _attrs(node)
        if int(attrs.get("transA", 0)):
            raise self.unsupported(node, "transA=1")
        out = int(w.shape[0] if int(attrs.get("transB", 0)) else w.shape[1])
        bias = len(ins) > 2 and ins[2] is not None
        self._set(node, 0, self._emit(node, name, "linear", [self._flatten(node, name, x)], {"out": out, "bias": bias}))

    def _op_MatMul(self, node: Any, name: str, ins: list[Any]) -> None:
        x = self._act(node, ins[0])
        w = self._const(node, ins[1], "the weight")
        if w.ndim != 2 or self.builder.shape(x).spatial:
            raise self.unsupported(node, "a matrix product that is not a linear layer on features")
        self._set(node, 0, self._emit(node, name, "linear", [x], {"out": int(w.shape[1]), "bias": False}))

    def _op_BatchNormalization(self, node: Any, name: str, ins: list[Any]) -> None:
        x = self._act(node, ins[0])
        eps = float(_attrs(node).get("epsilon", 1e-5))
        self._set(node, 0, self._emit(node, name, "batchnorm", [x], {"eps": eps}))

    # ----------------------------------------------------------------- activations

    def _pointwise(
        self, node: Any, name: str, ins: list[Any], op: str, fields: dict[str, object] | None = None
    ) -> None:
        x = self._act(node, ins[0])
        if not self.builder.has_op(op):
            raise self.unsupported(node, f"convcalc has no '{op}' op yet")
        self._set(node, 0, self._emit(node, name, op, [x], fields or {}))

    def __getattr__(self, attr: str) -> Any:
        # The plain activations, one entry in _ACTIVATIONS each.
        if attr.startswith("_op_") and attr[4:] in _ACTIVATIONS:
            op = _ACTIVATIONS[attr[4:]]
            return lambda node, name, ins: self._pointwise(node, name, ins, op)
        raise AttributeError(attr)

    def _op_LeakyRelu(self, node: Any, name: str, ins: list[Any]) -> None:
        alpha = float(_attrs(node).get("alpha", 0.01))
        self._pointwise(node, name, ins, "leaky_relu", {"negative_slope": alpha})

    def _op_Gelu(self, node: Any, name: str, ins: list[Any]) -> None:
        if _text(_attrs(node).get("approximate", "none")) != "none":
            self.builder.notes.append(f"node '{name}': Gelu approximate='tanh' imported as (exact) gelu")
        self._pointwise(node, name, ins, "gelu")

    def _op_Softplus(self, node: Any, name: str, ins: list[Any]) -> None:
        # Softplus → Tanh → Mul with the input: Mish, as exporters before opset 18 write nn.Mish.
        tanh = self._only_consumer(node.output[0], "Tanh")
        mul = None if tanh is None else self._only_consumer(tanh.output[0], "Mul")
        if mul is not None and node.input[0] in mul.input and self.builder.has_op("mish"):
            layer = self._emit(node, name, "mish", [self._act(node, ins[0])], {})
            self.absorbed[id(tanh)] = self.absorbed[id(mul)] = layer
            self._set(node, 0, layer)
            return
        self._pointwise(node, name, ins, "softplus")

    def _stored(self, tensor: str | None) -> bool:
        """Whether `tensor` is a stored tensor (an initializer: a module's parameter), possibly reshaped or
        cast on the way (Unsqueeze, CastLike, the legacy exporter's Identity of a shared initializer)."""
        while tensor is not None and tensor not in self.initializers:
            node = next((n for n in self.graph.node if tensor in n.output), None)
            if node is None or node.op_type not in ("Identity", "Unsqueeze", "Reshape", "Cast", "CastLike"):
                return False
            tensor = node.input[0]
        return tensor is not None

    def _next(self, tensor: str, op_type: str) -> Any:
        """The one node of `op_type` computing on `tensor`, not counting the nodes that only read its shape
        or type (Shape, CastLike's second input), which exporters add around patterns; else None."""
        users = [
            u
            for u in self.consumers.get(tensor, [])
            if u.op_type != "Shape" and not (u.op_type == "CastLike" and list(u.input).index(tensor) == 1)
        ]
        return users[0] if len(users) == 1 and users[0].op_type == op_type else None

    def _only_consumer(self, tensor: str, op_type: str) -> Any:
        users = self.consumers.get(tensor, [])
        if len(users) == 1 and users[0].op_type == op_type and self.uses.get(tensor, 0) == 1:
            return users[0]
        return None

    def _op_Elu(self, node: Any, name: str, ins: list[Any]) -> None:
        self._pointwise(node, name, ins, "elu")

    def _op_HardSigmoid(self, node: Any, name: str, ins: list[Any]) -> None:
        attrs = _attrs(node)
        alpha, beta = float(attrs.get("alpha", 0.2)), float(attrs.get("beta", 0.5))
        if not (math.isclose(alpha, 1 / 6, rel_tol=1e-6) and beta == 0.5):
            raise self.unsupported(node, f"alpha {alpha}, beta {beta} (PyTorch's hardsigmoid is alpha 1/6, beta 0.5)")
        self._pointwise(node, name, ins, "hardsigmoid")

    def _op_PRelu(self, node: Any, name: str, ins: list[Any]) -> None:
        self._pointwise(node, name, ins, "prelu")

    def _op_Softmax(self, node: Any, name: str, ins: list[Any]) -> None:
        x = self._act(node, ins[0])
        axis = int(_attrs(node).get("axis", -1 if self.opset >= 13 else 1))
        if axis % (self._rank(x) + 2) != 1:
            raise self.unsupported(node, "a softmax over another axis than channels")
        self._pointwise(node, name, ins, "softmax")

    def _op_Clip(self, node: Any, name: str, ins: list[Any]) -> None:
        attrs = _attrs(node)
        lo: float | None = attrs.get("min")
        hi: float | None = attrs.get("max")
        if len(ins) > 1 and ins[1] is not None:
            lo = float(self._const(node, ins[1], "min"))
        if len(ins) > 2 and ins[2] is not None:
            hi = float(self._const(node, ins[2], "max"))
        if lo == 0 and hi == 6:
            self._pointwise(node, name, ins, "relu6")
        elif lo == 0 and (hi is None or math.isinf(hi)):
            self._pointwise(node, name, ins, "relu")
        else:
            self._pointwise(node, name, ins, "hardtanh")

    def _pass(self, node: Any, name: str, ins: list[Any]) -> None:
        self._set(node, 0, self._act(node, ins[0]))

    _op_Identity = _pass
    _op_Dropout = _pass
    _op_Cast = _pass
    _op_CastLike = _pass
