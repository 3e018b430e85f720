"""Read a PyTorch model into a convcalc stack through torch.export: `from_torch(module, example_input)`,
or a `.pt2` file written by torch.export.save (`read_pt2`).

torch.export keeps the ops as written (BatchNorm unfused, `padding='same'`, ceil_mode, align_corners),
the module path of every node (`nn_module_stack`) and a shape per node (`meta["val"]`, for tests to check
convcalc's against). Each aten op becomes the layer a YAML file would write; arguments not given take the
op schema's defaults. An op convcalc cannot express is an error naming the node and its module.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Final

from convcalc.errors import FileProblemError, Problem, SpecError
from convcalc.importers.builder import Builder, Doc, Imported, OnUnsupported, Unsupported
from convcalc.stack.spec import INPUT_NAME, InputSpec, StackSpec

#: What to install for torch models (torch is never a dependency of convcalc).
INSTALL: Final = "pip install torch"

#: aten ops that are the identity at inference (or views that keep the shape).
_PASS: Final = frozenset(
    {"dropout", "feature_dropout", "alpha_dropout", "clone", "contiguous", "detach", "alias", "_assert_tensor_metadata"}
)

#: aten activations with a convcalc op of the same meaning and no fields.
_ACTIVATIONS: Final = {
    "relu": "relu",
    "relu_": "relu",
    "sigmoid": "sigmoid",
    "tanh": "tanh",
    "silu": "silu",
    "silu_": "silu",
    "relu6": "relu6",
    "hardswish": "hardswish",
    "hardsigmoid": "hardsigmoid",
    "selu": "selu",
    "mish": "mish",
    "softplus": "softplus",
}

#: Resampling ops: aten name → (convcalc mode, whether align_corners is an argument).
_UPSAMPLE: Final = {
    "upsample_nearest1d": ("nearest", False),
    "upsample_nearest2d": ("nearest", False),
    "upsample_nearest3d": ("nearest", False),
    "_upsample_nearest_exact1d": ("nearest-exact", False),
    "_upsample_nearest_exact2d": ("nearest-exact", False),
    "_upsample_nearest_exact3d": ("nearest-exact", False),
    "upsample_linear1d": ("linear", True),
    "upsample_bilinear2d": ("linear", True),
    "upsample_trilinear3d": ("linear", True),
    "upsample_bicubic2d": ("bicubic", True),
}


@dataclass(frozen=True)
class _ChannelsLast:
    """A layer permuted to N×spatial×C, waiting for a layer_norm over C and the permute back (ConvNeXt's
    LayerNorm2d)."""

    source: str


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise FileProblemError(Problem(f"importing a PyTorch model needs torch: {INSTALL}")) from None
    return torch


def from_torch(module: Any, example_input: Any) -> StackSpec:
    """The `nn.Module` as a validated stack, exported with torch.export on `example_input` (N, C, *spatial)."""
    return read_torch(module, example_input).stack


def read_torch(
    module: Any, example_input: Any, output: str | None = None, on_unsupported: OnUnsupported = "error"
) -> Imported:
    """The module exported with torch.export on `example_input` and imported (see read_pt2)."""
    torch = _torch()
    try:
        program = torch.export.export(module, (example_input,))
    except Exception as exc:  # torch.export's own refusals (data-dependent control flow, ...)
        raise SpecError(Problem(f"torch.export cannot export the module: {exc}")) from None
    return _Importer(program, type(module).__name__, None, output, on_unsupported).run()


def read_pt2(
    path: str | os.PathLike[str],
    input: InputSpec | None = None,
    output: str | None = None,
    on_unsupported: OnUnsupported = "error",
) -> Imported:
    """The torch.export program saved at `path` (torch.export.save) as a validated stack.

    `input` gives the input shape (no batch) when the program was exported with dynamic sizes; `output`
    names the graph node to stop at; on_unsupported as for ONNX (convcalc.importers.onnx.read_onnx).
    """
    file = os.fspath(path)
    torch = _torch()
    if not os.path.isfile(file):
        raise FileProblemError(Problem("no such file" if not os.path.exists(file) else "not a file", file))
    try:
        program = torch.export.load(file)
    except Exception as exc:
        raise FileProblemError(Problem(f"not a torch.export program (.pt2): {exc}", file)) from None
    return _Importer(program, file, input, output, on_unsupported).run()


def _arguments(node: Any) -> dict[str, Any]:
    """The node's arguments by name, the schema's defaults filled in."""
    schema = node.target._schema
    values: dict[str, Any] = {}
    for i, arg in enumerate(schema.arguments):
        if i < len(node.args):
            values[arg.name] = node.args[i]
        elif arg.name in node.kwargs:
            values[arg.name] = node.kwargs[arg.name]
        elif arg.has_default_value():
            values[arg.name] = arg.default_value
    return values


def _ints(value: Any, rank: int) -> list[int]:
    """A per-axis argument as a list of `rank` ints (an int or a one-entry list is broadcast)."""
    values = [int(v) for v in value] if isinstance(value, (list, tuple)) else [int(value)]
    return values * rank if len(values) == 1 else values


def _dims(val: Any) -> list[int | None]:
    """A FakeTensor's shape; symbolic sizes are None."""
    return [int(d) if isinstance(d, int) else None for d in val.shape]


class _Importer:
    def __init__(
        self, program: Any, label: str, input: InputSpec | None, output: str | None, on_unsupported: OnUnsupported
    ) -> None:
        self.program = program
        self.file = label
        self.output = output
        self.on_unsupported = on_unsupported
        self.graph = program.graph_module.graph
        signature = program.graph_signature
        user = [n for n in self.graph.nodes if n.op == "placeholder" and n.name in signature.user_inputs]
        if len(user) != 1:
            raise SpecError(Problem(f"convcalc imports models with one input tensor; this one has {len(user)}", label))
        self.input_node = user[0]
        dims = _dims(self.input_node.meta["val"])
        if not 3 <= len(dims) <= 5 or dims[1] is None:
            raise SpecError(Problem(f"the input has shape {dims}; convcalc imports N×C×(1 to 3 spatial axes)", label))
        spec = InputSpec(dims[1], tuple(dims[2:]))
        if input is not None:
            if input.rank != spec.rank or input.channels != spec.channels:
                raise SpecError(
                    Problem(
                        f"the program's input is {dims[1:]}; the given input must match its rank and channels",
                        parameter="input",
                    )
                )
            spec = input
        self.builder = Builder(label, spec)
        self.values: dict[str, Any] = {self.input_node.name: INPUT_NAME}
        self.last = INPUT_NAME

    def run(self) -> Imported:
        stopped: str | None = None
        target: str | None = None
        for node in self.graph.nodes:
            if node.op == "placeholder":
                if node is not self.input_node:
                    self.values[node.name] = node  # a parameter, buffer or constant: its shape is in meta
                continue
            if node.op == "output":
                break
            try:
                self._node(node)
            except Unsupported as exc:
                if self.on_unsupported == "stop":
                    stopped = f"node '{node.name}' ({self._target(node)}): {exc}"
                    break
                raise SpecError(
                    Problem(
                        f"{exc}; the last supported node is '{self.last}': import up to it with output "
                        "(or stop there with on_unsupported 'stop')",
                        self.builder.location(node.name, self._target(node)).file,
                    )
                ) from None
            if node.name == self.output:
                value = self.values.get(node.name)
                if not isinstance(value, str):
                    raise SpecError(Problem(f"'{node.name}' is not an imported layer", self.file, parameter="output"))
                target = value
                break
        if self.output is not None and target is None and stopped is None:
            raise SpecError(Problem(f"no node '{self.output}' in the program", self.file, parameter="output"))
        return self.builder.result(stopped, target)

    # ----------------------------------------------------------------- helpers

    def _target(self, node: Any) -> str:
        return str(getattr(node.target, "__name__", node.target))

    def _module(self, node: Any) -> str | None:
        stack = node.meta.get("nn_module_stack")
        if not stack:
            return None
        path = list(stack.values())[-1][0]
        return str(path) if path else None

    def unsupported(self, node: Any, why: str) -> Unsupported:
        module = self._module(node)
        args = ", ".join(f"{k}={self._show(v)}" for k, v in _arguments(node).items()) if self._has_schema(node) else ""
        where = f" in module '{module}'" if module else ""
        return Unsupported(f"{self._target(node)}{where} is not supported: {why} (arguments {{{args}}})")

    def _has_schema(self, node: Any) -> bool:
        return hasattr(node.target, "_schema")

    def _show(self, value: Any) -> str:
        if hasattr(value, "op") and hasattr(value, "name"):
            return f"'{value.name}'"
        return repr(value)

    def _act(self, node: Any, value: Any, what: str = "its input") -> str:
        found = self.values.get(value.name) if hasattr(value, "name") else None
        if not isinstance(found, str):
            raise self.unsupported(node, f"{what} is not an activation convcalc imported")
        return found

    def _is_act(self, value: Any) -> bool:
        return hasattr(value, "name") and isinstance(self.values.get(value.name), str)

    def _shape(self, value: Any) -> list[int | None]:
        return _dims(value.meta["val"])

    def _emit(self, node: Any, op: str, inputs: list[str], fields: dict[str, object]) -> str:
        doc = Doc(
            self.builder.unique(self._module(node) or node.name),
            op,
            inputs,
            fields,
            f"{self._target(node)} {node.name}" + (f" ({self._module(node)})" if self._module(node) else ""),
            self.builder.location(node.name, self._target(node)),
        )
        layer = self.builder.add(doc)
        self._set(node, layer)
        return layer

    def _set(self, node: Any, value: Any) -> Any:
        self.values[node.name] = value
        if isinstance(value, str):
            self.last = node.name
            if value != INPUT_NAME:
                self.builder.tensors[value] = node.name
        return value

    # ----------------------------------------------------------------- the ops

    def _node(self, node: Any) -> None:
        if node.op == "call_function" and node.target.__name__ == "getitem":
            source = self.values.get(node.args[0].name)
            if isinstance(source, tuple):
                self._set(node, source[node.args[1]])
                return
            raise self.unsupported(node, "an item of something that is not a tuple of layers")
        if node.op != "call_function" or not self._has_schema(node):
            raise self.unsupported(node, f"a {node.op} node")
        name = node.target._schema.name.split("::")[-1]
        a = _arguments(node)
        if name in _PASS:
            self._set(node, self._act(node, a.get("input", a.get("self"))))
            return
        if name in _ACTIVATIONS:
            op = _ACTIVATIONS[name]
            if not self.builder.has_op(op):
                raise self.unsupported(node, f"convcalc has no '{op}' op yet")
            self._emit(node, op, [self._act(node, a["self"])], {})
            return
        handler = getattr(self, f"_op_{name}", None)
        if handler is None:
            raise self.unsupported(node, "convcalc has no op for it")
        handler(node, a)

    def _conv(self, node: Any, a: dict[str, Any], transposed: bool) -> None:
        x = self._act(node, a["input"])
        w = self._shape(a["weight"])
        rank = len(w) - 2
        groups = int(a.get("groups", 1))
        fields: dict[str, object] = {"out": int(w[1] or 0) * groups if transposed else int(w[0] or 0)}
        fields["kernel"] = [int(k or 0) for k in w[2:]]
        fields["stride"] = _ints(a.get("stride", 1), rank)
        padding = a.get("padding", 0)
        if isinstance(padding, str):
            fields["padding"] = padding
        else:
            pairs = [[p, p] for p in _ints(padding, rank)]
            if not transposed:
                x, pairs, mode = self.builder.fold_pad(x, pairs, len(a["input"].users) == 1)
                if mode is not None:
                    fields["padding_mode"] = mode
            fields["padding"] = [p[0] for p in pairs] if transposed else pairs
        if transposed:
            fields["output_padding"] = _ints(a.get("output_padding", 0), rank)
        fields["dilation"] = _ints(a.get("dilation", 1), rank)
        fields["groups"] = groups
        fields["bias"] = a.get("bias") is not None
        self._emit(node, "deconv" if transposed else "conv", [x], fields)

    def _op_conv1d(self, node: Any, a: dict[str, Any]) -> None:
        self._conv(node, a, False)

    _op_conv2d = _op_conv1d
    _op_conv3d = _op_conv1d

    def _op_conv_transpose1d(self, node: Any, a: dict[str, Any]) -> None:
        self._conv(node, a, True)

    _op_conv_transpose2d = _op_conv_transpose1d
    _op_conv_transpose3d = _op_conv_transpose1d

    def _op_convolution(self, node: Any, a: dict[str, Any]) -> None:
        self._conv(node, a, bool(a["transposed"]))

    def _op_group_norm(self, node: Any, a: dict[str, Any]) -> None:
        fields: dict[str, object] = {
            "groups": int(a["num_groups"]),
            "eps": float(a.get("eps", 1e-5)),
            "affine": a.get("weight") is not None,
        }
        self._emit(node, "groupnorm", [self._act(node, a["input"])], fields)

    def _op_permute(self, node: Any, a: dict[str, Any]) -> None:
        dims = [int(d) % len(self._shape(a["self"])) for d in a["dims"]]
        full = len(dims)
        source = self.values.get(a["self"].name)
        if isinstance(source, str) and dims == [0, *range(2, full), 1]:
            self._set(node, _ChannelsLast(source))  # channels last: a layer_norm over C should follow
            return
        if isinstance(source, _ChannelsLast) and dims == [0, full - 1, *range(1, full - 1)]:
            self._set(node, source.source)  # channels first again
            return
        raise self.unsupported(node, "a permute outside the channels-last LayerNorm pattern")

    def _op_layer_norm(self, node: Any, a: dict[str, Any]) -> None:
        source = self.values.get(a["input"].name)
        shape = self._shape(a["input"])
        if not isinstance(source, _ChannelsLast):
            raise self.unsupported(node, "a layer_norm outside permute → layer_norm → permute (LayerNorm2d)")
        if [int(d) for d in a["normalized_shape"]] != shape[-1:]:
            raise self.unsupported(node, "a layer_norm over more axes than the channels")
        fields: dict[str, object] = {
            "eps": float(a.get("eps", 1e-5)),
            "elementwise_affine": a.get("weight") is not None,
        }
        layer = self._emit(node, "layernorm", [source.source], fields)
        del self.builder.tensors[layer]  # its node is channels last; the permute back is the layer's tensor
        self.values[node.name] = _ChannelsLast(layer)

    def _op_batch_norm(self, node: Any, a: dict[str, Any]) -> None:
        self._emit(node, "batchnorm", [self._act(node, a["input"])], {"eps": float(a.get("eps", 1e-5))})

    def _op__native_batch_norm_legit_no_training(self, node: Any, a: dict[str, Any]) -> None:
        layer = self.builder.add(
            Doc(
                self.builder.unique(self._module(node) or node.name),
                "batchnorm",
                [self._act(node, a["input"])],
                {"eps": float(a.get("eps", 1e-5))},
                f"{self._target(node)} {node.name}",
                self.builder.location(node.name, self._target(node)),
            )
        )
        self.values[node.name] = (layer, None, None)  # (output, mean, invstd): getitem 0 is the layer
        self.builder.tensors[layer] = node.name
        self.last = node.name

    def _pool(self, node: Any, a: dict[str, Any], op: str) -> None:
        x = self._act(node, a["self"])
        kernel = [int(k) for k in a["kernel_size"]]
        rank = len(self._shape(a["self"])) - 2
        kernel = kernel * rank if len(kernel) == 1 else kernel
        stride = a.get("stride") or kernel  # an empty stride means the kernel, as in PyTorch
        fields: dict[str, object] = {
            "kernel": kernel,
            "stride": _ints(stride, rank),
            "padding": _ints(a.get("padding", 0), rank),
            "ceil_mode": bool(a.get("ceil_mode", False)),
        }
        if op == "maxpool":
            fields["dilation"] = _ints(a.get("dilation", 1), rank)
        else:
            fields["count_include_pad"] = bool(a.get("count_include_pad", True))
            if a.get("divisor_override") is not None:
                raise self.unsupported(node, "divisor_override")
        self._emit(node, op, [x], fields)

    def _op_max_pool2d(self, node: Any, a: dict[str, Any]) -> None:
        self._pool(node, a, "maxpool")

    _op_max_pool1d = _op_max_pool2d
    _op_max_pool3d = _op_max_pool2d

    def _op_max_pool2d_with_indices(self, node: Any, a: dict[str, Any]) -> None:
        if any(user.args[1] != 0 for user in node.users if user.target.__name__ == "getitem"):
            raise self.unsupported(node, "its indices are used (max_unpool)")
        self._pool(node, a, "maxpool")
        self.values[node.name] = (self.values[node.name], None)

    _op_max_pool1d_with_indices = _op_max_pool2d_with_indices
    _op_max_pool3d_with_indices = _op_max_pool2d_with_indices

    def _op_avg_pool2d(self, node: Any, a: dict[str, Any]) -> None:
        self._pool(node, a, "avgpool")

    _op_avg_pool1d = _op_avg_pool2d
    _op_avg_pool3d = _op_avg_pool2d

    def _op_adaptive_avg_pool2d(self, node: Any, a: dict[str, Any]) -> None:
        self._emit(node, "adaptive_avgpool", [self._act(node, a["self"])], {"size": [int(s) for s in a["output_size"]]})

    _op_adaptive_avg_pool1d = _op_adaptive_avg_pool2d
    _op_adaptive_avg_pool3d = _op_adaptive_avg_pool2d

    def _op_adaptive_max_pool2d(self, node: Any, a: dict[str, Any]) -> None:
        layer = self._emit(
            node, "adaptive_maxpool", [self._act(node, a["self"])], {"size": [int(s) for s in a["output_size"]]}
        )
        self.values[node.name] = (layer, None)

    def _reduce(self, node: Any, a: dict[str, Any], op: str) -> None:
        x = self._act(node, a["self"])
        full = len(self._shape(a["self"]))
        dims = sorted(int(d) % full for d in (a.get("dim") or []))
        if dims != list(range(2, full)):
            raise self.unsupported(node, "a reduction over other axes than all the spatial ones")
        layer = self._emit(node, op, [x], {"size": 1})
        if not a.get("keepdim", False):
            self._emit(node, "flatten", [layer], {})

    def _op_mean(self, node: Any, a: dict[str, Any]) -> None:
        self._reduce(node, a, "adaptive_avgpool")

    def _op_amax(self, node: Any, a: dict[str, Any]) -> None:
        self._reduce(node, a, "adaptive_maxpool")

    def _binary(self, node: Any, a: dict[str, Any], op: str) -> None:
        left, right = a["self"], a["other"]
        acts = [v for v in (left, right) if self._is_act(v)]
        if len(acts) == 2:
            if a.get("alpha", 1) != 1:
                raise self.unsupported(node, "alpha other than 1")
            if not self.builder.has_op(op):
                raise self.unsupported(node, f"convcalc has no '{op}' op yet")
            if op == "mul" and self._silu(node, left, right):
                return
            self._emit(node, op, [self._act(node, left), self._act(node, right)], {})
            return
        if len(acts) != 1:
            raise self.unsupported(node, "its operands are not activations")
        x = acts[0]
        other = right if x is left else left
        if hasattr(other, "meta"):
            shape, own = self._shape(other), self._shape(x)
            if len(shape) > len(own) or any(
                c not in (1, d) for c, d in zip(reversed(shape), reversed(own), strict=False)
            ):
                raise self.unsupported(node, f"an operand of shape {shape} that would broadcast the activation")
        self._set(node, self._act(node, x))  # a constant bias or scale: the shape and field stay

    def _op_add(self, node: Any, a: dict[str, Any]) -> None:
        self._binary(node, a, "add")

    _op_add_ = _op_add

    def _op_mul(self, node: Any, a: dict[str, Any]) -> None:
        self._binary(node, a, "mul")

    _op_mul_ = _op_mul

    def _op_sub(self, node: Any, a: dict[str, Any]) -> None:
        self._binary(node, a, "sub")

    def _silu(self, node: Any, left: Any, right: Any) -> bool:
        for x, s in ((left, right), (right, left)):
            doc = self.builder.doc(self.values[s.name])
            if doc is not None and doc.op == "sigmoid" and doc.inputs == [self.values[x.name]] and len(s.users) == 1:
                doc.op = "silu"
                self.builder.touched()
                self._set(node, doc.name)
                return True
        return False

    def _op_cat(self, node: Any, a: dict[str, Any]) -> None:
        tensors = list(a["tensors"])
        full = len(self._shape(tensors[0]))
        if int(a.get("dim", 0)) % full != 1:
            raise self.unsupported(node, "a concatenation along another axis than channels")
        self._emit(node, "concat", [self._act(node, t, "every input") for t in tensors], {})

    def _op_flatten(self, node: Any, a: dict[str, Any]) -> None:
        full = len(self._shape(a["self"]))
        if int(a.get("start_dim", 0)) != 1 or int(a.get("end_dim", -1)) % full != full - 1:
            raise self.unsupported(node, "a flatten other than torch.flatten(x, 1)")
        self._emit(node, "flatten", [self._act(node, a["self"])], {})

    def _op_view(self, node: Any, a: dict[str, Any]) -> None:
        source, out = self._shape(a["self"]), _dims(node.meta["val"])
        if len(out) == 2 and len(source) > 2 and out[0] == source[0]:
            self._emit(node, "flatten", [self._act(node, a["self"])], {})
            return
        if out == source:
            self._set(node, self._act(node, a["self"]))
            return
        raise self.unsupported(node, f"a reshape of {source} to {out} (convcalc reshapes only to [N, -1])")

    _op_reshape = _op_view
    _op__unsafe_view = _op_view

    def _op_linear(self, node: Any, a: dict[str, Any]) -> None:
        w = self._shape(a["weight"])
        self._emit(
            node, "linear", [self._act(node, a["input"])], {"out": int(w[0] or 0), "bias": a.get("bias") is not None}
        )

    def _op_hardtanh(self, node: Any, a: dict[str, Any]) -> None:
        lo, hi = float(a.get("min_val", -1.0)), float(a.get("max_val", 1.0))
        op = "relu6" if (lo, hi) == (0.0, 6.0) else "hardtanh"
        if not self.builder.has_op(op):
            raise self.unsupported(node, f"convcalc has no '{op}' op yet")
        self._emit(node, op, [self._act(node, a["self"])], {})

    _op_hardtanh_ = _op_hardtanh

    def _op_leaky_relu(self, node: Any, a: dict[str, Any]) -> None:
        slope = float(a.get("negative_slope", 0.01))
        self._emit(node, "leaky_relu", [self._act(node, a["self"])], {"negative_slope": slope})

    _op_leaky_relu_ = _op_leaky_relu

    def _op_gelu(self, node: Any, a: dict[str, Any]) -> None:
        if a.get("approximate", "none") != "none":
            self.builder.notes.append(f"node '{node.name}': gelu approximate='tanh' imported as (exact) gelu")
        self._emit(node, "gelu", [self._act(node, a["self"])], {})

    def _resample(self, node: Any, a: dict[str, Any], mode: str, corners: bool) -> None:
        x = self._act(node, a["input"])
        if mode not in ("nearest", "linear") and not self._upsample_mode(mode):
            raise self.unsupported(node, f"mode '{mode}' (convcalc's upsample has no such mode yet)")
        fields: dict[str, object] = {}
        scales = a.get("scale_factors")
        if scales:
            fields["scale"] = [int(s) if float(s).is_integer() else float(s) for s in scales]
        else:
            fields["size"] = [int(s) for s in a["output_size"]]
        fields["mode"] = mode
        if corners:
            fields["align_corners"] = bool(a.get("align_corners", False))
        self._emit(node, "upsample", [x], fields)

    def _upsample_mode(self, mode: str) -> bool:
        from convcalc.ops import registry

        kind = next(f.kind for f in registry.OPS["upsample"].fields if f.name == "mode")
        return mode in getattr(kind, "choices", ())

    def __getattr__(self, attr: str) -> Any:
        # upsample_bilinear2d and friends, one entry in _UPSAMPLE each.
        name = attr.removeprefix("_op_")
        if attr.startswith("_op_") and name in _UPSAMPLE:
            mode, corners = _UPSAMPLE[name]
            return lambda node, a: self._resample(node, a, mode, corners)
        raise AttributeError(attr)

    def _op_pixel_shuffle(self, node: Any, a: dict[str, Any]) -> None:
        self._emit(node, "pixel_shuffle", [self._act(node, a["self"])], {"factor": int(a["upscale_factor"])})

    def _op_pixel_unshuffle(self, node: Any, a: dict[str, Any]) -> None:
        self._emit(node, "pixel_unshuffle", [self._act(node, a["self"])], {"factor": int(a["downscale_factor"])})

    def _pad(self, node: Any, a: dict[str, Any], mode: str, value: float = 0.0) -> None:
        x = self._act(node, a["self"] if "self" in a else a["input"])
        flat = [int(p) for p in a["pad"]]
        rank = len(self._shape(a["self"] if "self" in a else a["input"])) - 2
        if len(flat) > 2 * rank:
            raise self.unsupported(node, "padding of the batch or channel axis")
        pairs = [[0, 0] for _ in range(rank)]
        for k in range(len(flat) // 2):  # F.pad lists the last axis first
            pairs[rank - 1 - k] = [flat[2 * k], flat[2 * k + 1]]
        fields: dict[str, object] = {"padding": pairs, "mode": mode}
        if value:
            fields["value"] = float(value)
        self._emit(node, "pad", [x], fields)

    def _op_pad(self, node: Any, a: dict[str, Any]) -> None:
        self._pad(node, a, str(a.get("mode", "constant")), float(a.get("value") or 0.0))

    def _op_constant_pad_nd(self, node: Any, a: dict[str, Any]) -> None:
        self._pad(node, a, "constant", float(a.get("value", 0.0)))

    def _op_reflection_pad2d(self, node: Any, a: dict[str, Any]) -> None:
        self._pad(node, {**a, "pad": a["padding"]}, "reflect")

    _op_reflection_pad1d = _op_reflection_pad2d
    _op_reflection_pad3d = _op_reflection_pad2d

    def _op_replication_pad2d(self, node: Any, a: dict[str, Any]) -> None:
        self._pad(node, {**a, "pad": a["padding"]}, "replicate")

    _op_replication_pad1d = _op_replication_pad2d
    _op_replication_pad3d = _op_replication_pad2d
