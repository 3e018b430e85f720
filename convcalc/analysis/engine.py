"""Analyse a layer stack: every layer's output shape, receptive field, parameters, MACs and diagnostics.

Conventions (stated once, used everywhere):
- shapes exclude the batch axis; sizes exactly as PyTorch 2.x computes them;
- receptive fields are per axis of the stack input, in input pixels (see `receptive`);
- params count weights and biases (batchnorm: its affine weight and bias, 2·C);
- MACs are multiply-accumulates at batch 1: conv ∏out·C_out·(C_in/g)·∏k, transposed conv counted
  on the input it reads ∏in·C_in·(C_out/g)·∏k, linear in·out; a bias adds one MAC per output
  element (C_out·∏out). Other layers count 0 (pooling, activations, resampling are not MACs;
  batchnorm folds into the conv before it). This is ptflops' convention for convolutions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from convcalc import collector, diagnostics
from convcalc.analysis.report import AxisField, LayerReport, Shape, StackReport
from convcalc.diagnostics import Diagnostic
from convcalc.errors import Problem, ShapeError
from convcalc.geometry import arithmetic, overlap
from convcalc.geometry.receptive import (
    GLOBAL,
    IDENTITY,
    MAX_PERIOD,
    MAX_UNITS,
    AxisMap,
    Resample,
    Step,
    Transposed,
    Unmapped,
    Window,
    compose_map,
    merge,
)
from convcalc.notation import counts_text, dims_text, fraction_text, ratio_text
from convcalc.stack.spec import AXIS_NAMES, INPUT_NAME, SHAPE_PRESERVING, LayerSpec, StackSpec


class _LayerProblem(Exception):
    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class _Node:
    shape: Shape
    maps: tuple[AxisMap | None, ...]  # one per axis of the stack input


def _prod(values: tuple[int | None, ...]) -> int | None:
    if any(v is None for v in values):
        return None
    return math.prod(v for v in values if v is not None)


def _axis_label(rank: int, axis: int) -> str:
    return AXIS_NAMES.get(rank, tuple(str(i) for i in range(rank)))[axis]


class _Graph:
    """The layers analysed so far, for advice that looks up the branches of a merge."""

    def __init__(self, layers: tuple[LayerSpec, ...]) -> None:
        self.layers = {layer.name: layer for layer in layers}
        self.nodes: dict[str, _Node | None] = {}
        self.reports: dict[str, LayerReport] = {}

    def ancestors(self, name: str) -> set[str]:
        """`name` and every layer (and `input`) it reads, directly or not."""
        seen = {name}
        todo = [name]
        while todo:
            spec = self.layers.get(todo.pop())
            for parent in spec.inputs if spec is not None else ():
                if parent not in seen:
                    seen.add(parent)
                    todo.append(parent)
        return seen

    def branch_windows(self, branch: str, other: str, axis: int) -> list[tuple[LayerSpec, int, Fraction]]:
        """The window layers (conv, pool, pad) on `branch` from the merge back to where it forks from
        `other`, nearest first, with their padding before and their input's jump along `axis`."""
        fork = self.ancestors(other)
        found: list[tuple[LayerSpec, int, Fraction]] = []
        current = branch
        while current not in fork and current in self.layers:
            spec = self.layers[current]
            report = self.reports.get(current)
            source = self.nodes.get(spec.inputs[0])
            inner = None if source is None else source.maps[axis]
            padding = None if report is None or report.padding is None else report.padding[axis]
            window = spec.op in ("conv", "maxpool", "avgpool", "pad")
            if window and padding is not None and inner is not None and not inner.is_global:
                found.append((spec, padding[0], inner.jump))
            if len(spec.inputs) != 1:
                break
            current = spec.inputs[0]
        return found


class _LayerAnalysis:
    """The analysis of one layer: fills shape, steps, numbers and diagnostics from its spec and inputs."""

    def __init__(self, layer: LayerSpec, inputs: list[_Node], input_spec: Shape, graph: _Graph) -> None:
        self.layer = layer
        self.inputs = inputs
        self.stack_input = input_spec
        self.graph = graph
        self.diagnostics: list[Diagnostic] = []
        self.kernel: tuple[int, ...] | None = None
        self.effective_kernel: tuple[int, ...] | None = None
        self.stride: tuple[int, ...] | None = None
        self.padding: tuple[tuple[int, int] | None, ...] | None = None
        self.params: int | None = 0
        self.macs: int | None = 0
        self.own_overlap = Fraction(1)  # this layer's overlap ratio on its own (transposed convs)
        self.unmapped: dict[int, Unmapped] = {}  # axes whose map this layer could not compute, and why

    # -- helpers -----------------------------------------------------------------------------
    @property
    def source(self) -> _Node:
        return self.inputs[0]

    @property
    def rank(self) -> int:
        return len(self.source.shape.spatial)

    def diag(self, code: str, message: str, **data: object) -> None:
        self.diagnostics.append(Diagnostic(code, self.layer.name, message, dict(data)))

    def need_spatial(self) -> None:
        if self.rank == 0:
            raise _LayerProblem(
                "op",
                f"{self.layer.op} needs spatial axes, but its input was flattened to "
                f"{self.source.shape.channels} features",
            )

    def label(self, axis: int) -> str:
        return _axis_label(self.rank, axis)

    def mapped(
        self,
        steps: list[Step | None],
        sizes: list[int | None],
        known: list[bool] | None = None,
        causal: list[bool] | None = None,
    ) -> tuple[AxisMap | None, ...]:
        """Compose each axis's step onto the input maps (None step = identity on that axis); `sizes` are
        the layer's output sizes (an explicit map lists that many units); `causal` says which axes' steps
        pad only before (`_pads_only_before`)."""
        out: list[AxisMap | None] = []
        for axis, (inner, step) in enumerate(zip(self.source.maps, steps, strict=True)):
            if inner is None or step is None:
                out.append(inner)
                continue
            result = compose_map(
                inner,
                step,
                known[axis] if known else True,
                units=sizes[axis],
                causal=causal[axis] if causal else False,
            )
            out.append(self.known_map(axis, result))
        return tuple(out)

    def known_map(self, axis: int, result: AxisMap | Unmapped) -> AxisMap | None:
        """The map, or None after noting why there is none."""
        if isinstance(result, Unmapped):
            self.unmapped[axis] = result
            return None
        return result

    # -- ops -------------------------------------------------------------------------------------
    def run(self) -> _Node:
        op = self.layer.op
        if op in ("conv", "maxpool", "avgpool"):
            return self.windowed()
        if op == "deconv":
            return self.deconv()
        if op in ("adaptive_avgpool", "adaptive_maxpool"):
            return self.adaptive()
        if op == "upsample":
            return self.upsample()
        if op in ("pixel_shuffle", "pixel_unshuffle"):
            return self.pixel()
        if op == "pad":
            return self.pad()
        if op in ("add", "mul", "concat"):
            return self.merge()
        if op == "flatten":
            return self.flatten()
        if op == "linear":
            return self.linear()
        if op in SHAPE_PRESERVING:
            if op == "batchnorm":
                channels = self.source.shape.channels
                self.params = None if channels is None else 2 * channels
            return self.source
        raise AssertionError(f"op {op!r} has no analysis")  # the loader only lets known ops through

    def windowed(self) -> _Node:
        """conv, maxpool, avgpool: a window sliding with a stride over (padded) input."""
        self.need_spatial()
        layer = self.layer
        is_conv = layer.op == "conv"
        sizes = self.source.shape.spatial
        out_sizes: list[int | None] = []
        steps: list[Step | None] = []
        known: list[bool] = []
        causal: list[bool] = []
        pads: list[tuple[int, int] | None] = []
        native = not isinstance(layer.padding, str) and all(b == a for b, a in layer.padding)
        k_effs = tuple(arithmetic.effective_kernel(k, d) for k, d in zip(layer.kernel, layer.dilation, strict=True))
        port: list[tuple[int, int] | None] = []
        unread: list[str] = []
        for axis, size in enumerate(sizes):
            k, s, d, k_eff = layer.kernel[axis], layer.stride[axis], layer.dilation[axis], k_effs[axis]
            before: int | None
            after: int | None
            if layer.padding == "valid":
                before, after = 0, 0
            elif layer.padding == "same":
                if size is not None:
                    before, after = arithmetic.same_padding(size, k, s, d)
                else:
                    before, after = arithmetic.same_padding_before(None, k, s, d), None
                port.append((before, after) if before is not None and after is not None else None)
            else:
                before, after = layer.padding[axis]
            pads.append((before, after) if before is not None and after is not None else None)
            known.append(before is not None)
            causal.append(_pads_only_before(before, after, k_eff) and not (layer.ceil_mode and not is_conv))
            steps.append(Window(s, before if before is not None else 0, k, d))
            if size is None:
                out_sizes.append(None)
                continue
            assert before is not None
            assert after is not None
            try:
                if is_conv:
                    out = arithmetic.conv_output_size(size, k, s, before, after, d)
                else:
                    if native:
                        out = arithmetic.pool_output_size(size, k, s, before, after, d, layer.ceil_mode)
                    else:
                        # convcalc's own pool padding means "F.pad, then pool": the pool sees the
                        # padded size and no padding (so the last-window rule looks at that size).
                        out = arithmetic.pool_output_size(
                            size + before + after, k, s, 0, 0, d, layer.ceil_mode, check_padding=False
                        )
                    if layer.op == "avgpool" and self.rank == 3 and size + (before + after) * (not native) < k:
                        raise ValueError(
                            f"input size {size} is smaller than the kernel {k}; PyTorch's avg_pool3d refuses "
                            "it even when the padding would make it fit"
                        )
            except ValueError as exc:
                field = "padding" if "padding" in str(exc) else "kernel"
                raise _LayerProblem(field, f"{self.label(axis)}: {exc}") from None
            if is_conv and layer.padding_mode in ("reflect", "circular"):
                limit_ok = (
                    (max(before, after) < size) if layer.padding_mode == "reflect" else max(before, after) <= size
                )
                if not limit_ok:
                    rule = "smaller than" if layer.padding_mode == "reflect" else "at most"
                    raise _LayerProblem(
                        "padding",
                        f"{self.label(axis)}: {layer.padding_mode} padding {max(before, after)} must be {rule} "
                        f"the input size {size} (PyTorch refuses it)",
                    )
            if (
                not is_conv
                and layer.ceil_mode
                and native
                and arithmetic.ceil_mode_dropped_window(size, k, s, before, after, d)
            ):
                self.diag(
                    "ceil-mode-dropped",
                    f"{self.label(axis)}: ceil_mode dropped the last window: it would start at "
                    f"{out * s - before} in the right padding (input {size}); output {out}",
                    axis=self.label(axis),
                    output=out,
                )
            gaps = arithmetic.overlap_counts(k, s, d).count(0)
            leftover = (size + before + after - k_eff) % s
            if gaps:
                unread.append(f"{self.label(axis)}: reads only {s - gaps} of every {s} input pixels")
            elif not layer.ceil_mode and leftover - after > 0:
                n = leftover - after
                unread.append(f"{self.label(axis)}: the last {n} of {size} input pixel{'s' if n > 1 else ''} unread")
            out_sizes.append(out)
        if unread:
            self.diag(
                "unused-input",
                f"no window reads some input pixels ({'; '.join(unread)}): kernel {'×'.join(map(str, k_effs))}, "
                f"stride {'×'.join(map(str, layer.stride))}",
                axes=unread,
            )
        if layer.padding == "same":
            self.same_notes(port, known)
        self.kernel, self.effective_kernel, self.stride, self.padding = (
            layer.kernel,
            k_effs,
            layer.stride,
            tuple(pads),
        )
        channels = self.source.shape.channels
        out_channels = channels
        if is_conv:
            out_channels = self.conv_channels(channels, transposed=False)
        shape = Shape(out_channels, tuple(out_sizes))
        return _Node(shape, self.mapped(steps, out_sizes, known, causal))

    def same_notes(self, port: list[tuple[int, int] | None], known: list[bool]) -> None:
        layer = self.layer
        if any(s > 1 for s in layer.stride):
            if all(p is not None for p in port):
                # F.pad takes the last axis first.
                pairs = [p for p in reversed(port) if p is not None]
                flat = ", ".join(f"{b}, {a}" for b, a in pairs)
                # A max pool ignores TF's SAME padding: pad with −inf (as the runner does), not zeros.
                value = ", value=float('-inf')" if layer.op == "maxpool" else ""
                self.diag(
                    "same-strided",
                    f"padding 'same' with stride {'×'.join(map(str, layer.stride))}: PyTorch refuses it; "
                    f"a port pads explicitly: F.pad(x, ({flat}){value}) then padding=0",
                    padding=[list(p) for p in port if p is not None],
                    value="-inf" if layer.op == "maxpool" else "0",
                )
            else:
                self.diag(
                    "same-strided",
                    f"padding 'same' with stride {'×'.join(map(str, layer.stride))}: PyTorch refuses it; the "
                    "explicit padding a port needs depends on the input size (give the input size)",
                )
        else:
            odd = [
                self.label(axis)
                for axis, (k, d) in enumerate(zip(layer.kernel, layer.dilation, strict=True))
                if (d * (k - 1)) % 2
            ]
            if odd:
                self.diag(
                    "same-asymmetric",
                    f"padding 'same' on {', '.join(odd)}: the total d(k−1) is odd, so the extra pixel goes after "
                    "(PyTorch does the same and copies the input to do it)",
                    axes=odd,
                )
        if not all(known):
            self.diag(
                "padding-unknown",
                "the left padding of 'same' with this stride depends on the input size; give the input size to know "
                "the effective padding and centre",
            )

    def conv_channels(self, channels: int | None, transposed: bool) -> int | None:
        layer = self.layer
        out = layer.out if layer.out is not None else channels
        g = layer.groups
        if channels is not None and channels % g:
            raise _LayerProblem("groups", f"input channels {channels} must be divisible by groups {g}")
        if out is not None and out % g:
            raise _LayerProblem("groups", f"output channels {out} must be divisible by groups {g}")
        k = math.prod(layer.kernel)
        bias = out if layer.bias and out is not None else 0
        if channels is None or out is None:
            self.params = self.macs = None
            return out
        self.params = (channels * (out // g) if transposed else out * (channels // g)) * k + bias
        return out

    def finish_macs(self, in_sizes: tuple[int | None, ...], out_shape: Shape, transposed: bool) -> None:
        layer = self.layer
        cin, cout = self.source.shape.channels, out_shape.channels
        n_in, n_out = _prod(in_sizes), _prod(out_shape.spatial)
        if cin is None or cout is None or n_in is None or n_out is None:
            self.macs = None
            return
        k = math.prod(layer.kernel)
        g = layer.groups
        weights = n_in * cin * (cout // g) * k if transposed else n_out * cout * (cin // g) * k
        self.macs = weights + (cout * n_out if layer.bias else 0)

    def deconv(self) -> _Node:
        self.need_spatial()
        layer = self.layer
        sizes = self.source.shape.spatial
        assert not isinstance(layer.padding, str), "the loader refuses same/valid for deconv"
        out_sizes: list[int | None] = []
        steps: list[Step | None] = []
        taps_all: list[tuple[int, ...]] = []
        for axis, size in enumerate(sizes):
            k, s, d = layer.kernel[axis], layer.stride[axis], layer.dilation[axis]
            p, op = layer.padding[axis][0], layer.output_padding[axis]
            if not (op < s or op < d):
                raise _LayerProblem(
                    "output_padding",
                    f"{self.label(axis)}: output_padding {op} must be smaller than either stride {s} or "
                    f"dilation {d} (PyTorch refuses it)",
                )
            if size is None:
                out_sizes.append(None)
            else:
                try:
                    out_sizes.append(arithmetic.deconv_output_size(size, k, s, p, op, d))
                except ValueError as exc:
                    raise _LayerProblem("padding", f"{self.label(axis)}: {exc}") from None
            steps.append(Transposed(k, s, d, p))
            taps_all.append(overlap.phase_taps(k, s, d, p))
        found = diagnostics.transposed_overlap(
            layer.name, [self.label(a) for a in range(self.rank)], taps_all, layer.kernel, layer.stride, layer.dilation
        )
        if found is not None:
            self.diagnostics.append(found)
            if found.code == "checkerboard":
                self.own_overlap = Fraction(str(found.data["ratio"]))
        effs = tuple(arithmetic.effective_kernel(k, d) for k, d in zip(layer.kernel, layer.dilation, strict=True))
        self.kernel, self.effective_kernel, self.stride = layer.kernel, effs, layer.stride
        self.padding = tuple(layer.padding)
        out_channels = self.conv_channels(self.source.shape.channels, transposed=True)
        return _Node(Shape(out_channels, tuple(out_sizes)), self.mapped(steps, out_sizes))

    def adaptive(self) -> _Node:
        self.need_spatial()
        sizes = self.source.shape.spatial
        if self.rank == 1 and None in self.layer.size:
            raise _LayerProblem(
                "size", "PyTorch's 1-D adaptive pools need an output size (null keeps an axis in 2-D/3-D only)"
            )
        out_sizes: list[int | None] = []
        maps: list[AxisMap | None] = []
        for axis, (size, want) in enumerate(zip(sizes, self.layer.size, strict=True)):
            inner = self.source.maps[axis]
            if want is None:
                out_sizes.append(size)
                maps.append(inner)
                continue
            out_sizes.append(want)
            if want == 1:
                # Global pooling: its one unit sees everything, and so does whatever is resized
                # or broadcast from it (the periodic extension of a 1-unit map means nothing).
                maps.append(GLOBAL)
            elif inner is None:
                maps.append(None)
            elif size is not None:
                maps.append(
                    self.known_map(axis, compose_map(inner, Resample(Fraction(size, want), "bins"), units=want))
                )
            else:
                maps.append(None)
        return _Node(Shape(self.source.shape.channels, tuple(out_sizes)), tuple(maps))

    def upsample(self) -> _Node:
        self.need_spatial()
        layer = self.layer
        sizes = self.source.shape.spatial
        out_sizes: list[int | None] = []
        steps: list[Step | None] = []
        unknown: list[int] = []
        linear = layer.mode == "linear"
        align = bool(layer.align_corners)
        for axis, size in enumerate(sizes):
            scale = layer.scale[axis] if layer.scale else None
            out: int | None
            if scale is not None:
                out = None
                if size is not None:
                    try:
                        out = arithmetic.interpolate_output_size(size, scale)
                    except ValueError as exc:
                        raise _LayerProblem("scale", f"{self.label(axis)}: {exc}") from None
                    exact = Fraction(repr(scale)) * size
                    if exact.denominator == 1 and out < exact:
                        self.diag(
                            "scale-rounding",
                            f"{self.label(axis)}: {size} × {scale} is {int(exact)} exactly, but in floating point "
                            f"PyTorch computes {size * scale!r} and floors it to {out}",
                            axis=self.label(axis),
                        )
            else:
                out = layer.size[axis]
            out_sizes.append(out)
            ratio = arithmetic.interpolation_ratio(size, out, scale, align and linear)
            if ratio is None:
                unknown.append(axis)
                steps.append(None)
                continue
            if not linear:
                steps.append(Resample(ratio, "nearest"))
            else:
                steps.append(Resample(ratio, "linear_ac" if align else "linear"))
        maps = list(self.mapped(steps, out_sizes))
        for axis in unknown:
            maps[axis] = None
        return _Node(Shape(self.source.shape.channels, tuple(out_sizes)), tuple(maps))

    def pixel(self) -> _Node:
        self.need_spatial()
        r = self.layer.factor
        channels = self.source.shape.channels
        sizes = self.source.shape.spatial
        if self.layer.op == "pixel_shuffle":
            if channels is not None and channels % (r * r):
                raise _LayerProblem(
                    "factor",
                    f"input channels {channels} must be divisible by factor² = {r * r} (PyTorch refuses it)",
                )
            shape = Shape(
                None if channels is None else channels // (r * r),
                tuple(None if s is None else s * r for s in sizes),
            )
            return _Node(shape, self.mapped([Resample(Fraction(1, r), "nearest")] * self.rank, list(shape.spatial)))
        for axis, size in enumerate(sizes):
            if size is not None and size % r:
                raise _LayerProblem(
                    "factor",
                    f"{self.label(axis)}: size {size} must be divisible by factor {r} (PyTorch refuses it)",
                )
        shape = Shape(
            None if channels is None else channels * r * r,
            tuple(None if s is None else s // r for s in sizes),
        )
        return _Node(shape, self.mapped([Window(r, 0, r)] * self.rank, list(shape.spatial)))

    def pad(self) -> _Node:
        self.need_spatial()
        layer = self.layer
        assert not isinstance(layer.padding, str)
        out_sizes: list[int | None] = []
        for axis, size in enumerate(self.source.shape.spatial):
            before, after = layer.padding[axis]
            if size is None:
                out_sizes.append(None)
                continue
            if layer.mode == "reflect" and max(before, after) >= size:
                raise _LayerProblem(
                    "padding",
                    f"{self.label(axis)}: reflect padding {max(before, after)} must be smaller than the input "
                    f"size {size} (PyTorch refuses it)",
                )
            if layer.mode == "circular" and max(before, after) > size:
                raise _LayerProblem(
                    "padding",
                    f"{self.label(axis)}: circular padding {max(before, after)} must be at most the input size "
                    f"{size} (it would wrap around more than once)",
                )
            out = size + before + after
            if out < 1:
                raise _LayerProblem("padding", f"{self.label(axis)}: cropping {-before - after} leaves {out} of {size}")
            out_sizes.append(out)
        self.padding = tuple(layer.padding)
        steps: list[Step | None] = [Window(1, b, 1) for b, _ in layer.padding]
        causal = [_pads_only_before(b, a, 1) for b, a in layer.padding]
        return _Node(Shape(self.source.shape.channels, tuple(out_sizes)), self.mapped(steps, out_sizes, None, causal))

    def merge(self) -> _Node:
        layer = self.layer
        shapes = [n.shape for n in self.inputs]
        ranks = {len(s.spatial) for s in shapes}
        if len(ranks) > 1:
            raise _LayerProblem("from", f"inputs differ in rank: {self.describe_inputs()}")
        rank = ranks.pop()
        out_spatial: list[int | None] = []
        broadcast: list[set[int]] = [set() for _ in range(rank)]
        maybe: list[set[int]] = [set() for _ in range(rank)]
        for axis in range(rank):
            sizes = [s.spatial[axis] for s in shapes]
            known = {s for s in sizes if s is not None}
            if layer.op == "concat":
                if len(known) > 1:
                    raise _LayerProblem(
                        "from",
                        f"concat needs equal spatial sizes, but {_axis_label(rank, axis)} differs: "
                        f"{self.describe_inputs()}",
                    )
                out_spatial.append(known.pop() if known else None)
                continue
            size = _broadcast_size(sizes)
            if size is False:
                raise _LayerProblem(
                    "from",
                    f"{layer.op} needs equal sizes (or 1, broadcast), but {_axis_label(rank, axis)} differs: "
                    f"{self.describe_inputs()}",
                )
            out_spatial.append(size)
            broadcast[axis], maybe[axis] = _broadcast_branches(sizes, size)
        channels = [s.channels for s in shapes]
        out_channels: int | None
        if layer.op == "concat":
            out_channels = None if None in channels else sum(c for c in channels if c is not None)
        else:
            merged_channels = _broadcast_size(channels)
            if merged_channels is False:
                raise _LayerProblem("from", f"{layer.op} needs equal channels (or 1): {self.describe_inputs()}")
            out_channels = merged_channels
        maps: list[AxisMap | None] = []
        for axis in range(len(self.stack_input.spatial)):
            branch_maps = [
                GLOBAL if (axis < rank and i in broadcast[axis]) else n.maps[axis] for i, n in enumerate(self.inputs)
            ]
            # A branch that is broadcast only if an unknown size is not 1: its units are seen by every
            # unit, or unit by unit. Only a global branch answers both the same way.
            if axis < rank and any(branch_maps[i] is not GLOBAL for i in maybe[axis]):
                maps.append(None)
                continue
            if any(m is None for m in branch_maps):
                maps.append(None)
                continue
            known_maps = [m for m in branch_maps if m is not None]
            self.check_alignment(axis, known_maps)
            maps.append(self.known_map(axis, merge(known_maps, units=out_spatial[axis] if axis < rank else None)))
        return _Node(Shape(out_channels, tuple(out_spatial)), tuple(maps))

    def describe_inputs(self) -> str:
        return ", ".join(
            f"{name} {_fmt_shape(node.shape)}" for name, node in zip(self.layer.inputs, self.inputs, strict=True)
        )

    def check_alignment(self, axis: int, maps: list[AxisMap]) -> None:
        """Warn when a merge's branches look at different places.

        Branches agree in jump and, if every layer on both pads only before along this axis (a causal
        stack), in their last sample: unit i of each ends on the same input sample (their centres differ
        whenever their fields differ in length). Otherwise they agree in jump and centre.
        """
        local = [(name, m) for name, m in zip(self.layer.inputs, maps, strict=True) if not m.is_global]
        if len(local) < 2 or not all(m.offset_known for _, m in local):
            return
        first_name, first = local[0]
        label = _axis_label(len(self.stack_input.spatial), axis)
        for name, other in local[1:]:
            assert first.centre is not None
            assert other.centre is not None
            data: dict[str, object] = {
                "axis": label,
                "branches": [first_name, name],
                "jumps": [fraction_text(first.jump), fraction_text(other.jump)],
                "centres": [fraction_text(first.centre), fraction_text(other.centre)],
            }
            if other.jump != first.jump:
                self.diag(
                    "misaligned-merge",
                    f"{label}: branches disagree in jump: {first_name} has jump {fraction_text(first.jump)}, "
                    f"centre {fraction_text(first.centre)}; {name} has jump {fraction_text(other.jump)}, centre "
                    f"{fraction_text(other.centre)}",
                    rule="jump",
                    **data,
                )
                continue
            causal = first.causal and other.causal
            mine, theirs = (first.end, other.end) if causal else (first.centre, other.centre)
            assert mine is not None
            assert theirs is not None
            if mine == theirs:
                continue
            shift = theirs - mine
            fix = self.alignment_fix(axis, first_name, name, shift, causal)
            pixels = f"{fraction_text(abs(shift))} input pixel{'' if abs(shift) == 1 else 's'}"
            if causal:
                jump = fraction_text(first.jump)
                message = (
                    f"{label}: causal branches end on different samples: unit i of {first_name} ends at input "
                    f"pixel {fraction_text(mine)} + i·{jump}, of {name} at {fraction_text(theirs)} + i·{jump}, "
                    f"{pixels} {'later' if shift > 0 else 'earlier'}. Fix: {fix}"
                )
                data["ends"] = [fraction_text(mine), fraction_text(theirs)]
            else:
                message = (
                    f"{label}: branches disagree in centre: {first_name} has centre {fraction_text(mine)}, {name} "
                    f"{fraction_text(theirs)} (jump {fraction_text(first.jump)}): {name} is shifted by {pixels} "
                    f"{'after' if shift > 0 else 'before'} {first_name}. Fix: {fix}"
                )
            self.diag(
                "misaligned-merge",
                message,
                rule="last sample" if causal else "centre",
                shift=fraction_text(shift),
                **data,
            )

    def alignment_fix(self, axis: int, first: str, other: str, shift: Fraction, causal: bool) -> str:
        """How to remove a shift of `other` against `first` (in stack-input pixels): the padding change of
        one window layer on either branch (below where they fork) that moves it by exactly that much, or
        why there is none."""
        whole = False  # some layer could move by the shift, but only by cropping
        windows = {
            branch: self.graph.branch_windows(branch, fixed, axis) for branch, fixed in ((other, first), (first, other))
        }
        for branch, move in ((other, shift), (first, -shift)):
            for spec, before, jump in windows[branch]:
                # More padding before moves the windows, and every unit after them, back by jump pixels each.
                delta = move / jump
                if delta.denominator != 1:
                    continue
                whole = True
                if before + delta >= 0:
                    change = int(delta)
                    way = "more" if change > 0 else "less"
                    pixels = f"{fraction_text(abs(move))} input pixel{'' if abs(move) == 1 else 's'}"
                    return (
                        f"pad {spec.name} {abs(change)} {way} before (padding before {before} → {before + change}), "
                        f"which moves {branch} {pixels} {'earlier' if move > 0 else 'later'}"
                    )
        none = f"no padding change of one layer moves a branch by {fraction_text(abs(shift))} input pixels"
        if whole:
            return f"{none} without cropping"
        if causal:
            return f"{none}; give both branches windows that end on their unit's own sample"
        even = [
            f"{spec.name} (kernel {spec.kernel[axis]})"
            for found in windows.values()
            for spec, _, _ in found
            if spec.op != "pad" and arithmetic.effective_kernel(spec.kernel[axis], spec.dilation[axis]) % 2 == 0
        ]
        if even:
            return (
                f"{none} (it is a fraction of every layer's input pixel): an even kernel is centred half a pixel "
                f"after an odd one — {', '.join(even)}; give both branches odd kernels (e.g. kernel 3, padding 1)"
            )
        return f"{none} (it is a fraction of every layer's input pixel)"

    def flatten(self) -> _Node:
        shape = self.source.shape
        features = None if shape.channels is None else _prod((shape.channels, *shape.spatial))
        return _Node(Shape(features, ()), tuple(GLOBAL for _ in self.source.maps))

    def linear(self) -> _Node:
        layer = self.layer
        if self.rank:
            raise _LayerProblem(
                "op",
                f"linear acts on flattened features, but its input {_fmt_shape(self.source.shape)} has spatial "
                "axes; add a layer `op: flatten` before it",
            )
        features = self.source.shape.channels
        out = layer.out
        assert out is not None, "the loader requires out for linear"
        if features is None:
            self.params = self.macs = None
        else:
            self.params = self.macs = features * out + (out if layer.bias else 0)
        return _Node(Shape(out, ()), tuple(GLOBAL for _ in self.source.maps))


def _pads_only_before(before: int | None, after: int | None, k_eff: int) -> bool:
    """Whether a window keeps a stack causal along an axis: it pads only before (after 0, before ≥ 0) and
    so looks back, or reads only the sample at its own position (k_eff 1, no padding). A window of k_eff > 1
    without padding reads ahead of its position; padding after, a crop or ceil_mode's partial last
    window look ahead too."""
    if before is None or after is None or after != 0 or before < 0:
        return False
    return before > 0 or k_eff == 1


def _broadcast_size(sizes: list[int | None]) -> int | Literal[False] | None:
    """The size PyTorch's broadcasting gives (add, mul) when some sizes are unknown (None), or False
    when no input size makes it legal.

    Sizes broadcast when equal or 1. A known size above 1 wins: an unknown one must be 1 or that size
    (torch refuses anything else). Without one, an unknown size stays unknown, even against 1 (it is
    1 only if the unknown is). All 1: 1.
    """
    big = {s for s in sizes if s is not None and s != 1}
    if len(big) > 1:
        return False
    if big:
        return big.pop()
    return None if None in sizes else 1


def _broadcast_branches(sizes: list[int | None], size: int | None) -> tuple[set[int], set[int]]:
    """Which branches of a broadcasting merge are spread over every unit: (surely, only if an unknown
    size is not 1). A size-1 branch spreads when the result is larger than 1; against an unknown
    result it spreads unless the unknown is 1, and so does an unknown branch against a known result."""
    if size is None:
        return set(), {i for i, s in enumerate(sizes) if s == 1}
    if size == 1:
        return set(), set()
    return {i for i, s in enumerate(sizes) if s == 1}, {i for i, s in enumerate(sizes) if s is None}


def _fmt_shape(shape: Shape) -> str:
    return dims_text([shape.channels, *shape.spatial])


def _axis_field(m: AxisMap | None, size: int | None) -> AxisField:
    if m is None:
        return AxisField(None, None, None, None, None, overlap=None)
    if m.is_global:
        return AxisField(size, size, None, Fraction(0), None if size is None else Fraction(size - 1, 2), True)
    return AxisField(m.rf_max, m.rf_min, m.jump, m.padding, m.centre, overlap=m.overlap_ratio)


def _overlap_ratio(fields: tuple[AxisField, ...]) -> Fraction | None:
    """The N-D overlap ratio: the axes' ratios multiply (Distill: 2 in 1-D is 4 in 2-D)."""
    if any(f.overlap is None for f in fields):
        return None
    return math.prod((f.overlap for f in fields if f.overlap is not None), start=Fraction(1))


def _overlap_text(m: AxisMap) -> str:
    """The per-phase overlap values in phase order; for a map listing every unit (no short period), their range."""
    if m.explicit:
        return f"from {fraction_text(min(m.overlap))} to {fraction_text(max(m.overlap))}, unit by unit"
    return counts_text(m.overlap)


def _compound_note(work: _LayerAnalysis, node: _Node, fields: tuple[AxisField, ...], inputs: list[_Node]) -> None:
    """A `checkerboard-compound` warning when this resampling layer makes the stack's overlap more uneven
    than both its input and its own kernel alone would (stacked transposed convs compound)."""
    if work.layer.op not in ("deconv", "upsample", "pixel_shuffle"):
        return
    total = _overlap_ratio(fields)
    if total is None or total == 1:
        return
    before = [
        _overlap_ratio(tuple(_axis_field(m, None) for m in n.maps))
        for n in inputs
        if all(m is not None for m in n.maps)
    ]
    own = work.own_overlap
    if any(r is None for r in before):
        return
    upstream = max((r for r in before if r is not None), default=Fraction(1))
    if total <= max(own, upstream):
        return
    patterns = diagnostics.by_axes(
        [
            (_axis_label(len(fields), axis), _overlap_text(m))
            for axis, m in enumerate(node.maps)
            if m is not None and not m.is_global and len(set(m.overlap)) > 1
        ]
    )
    work.diag(
        "checkerboard-compound",
        f"stacked upsampling compounds the uneven overlap: per-phase values {patterns}; max:min "
        f"{ratio_text(total)} (this layer alone {ratio_text(own)}, its input {ratio_text(upstream)}). "
        "Fix: kernels divisible by the strides, resize then conv, or a stride-1 conv after",
        ratio=fraction_text(total),
        own=fraction_text(own),
    )


_FieldCache = dict[tuple[int, int | None], tuple[AxisMap | None, AxisField]]


def _field_of(cache: _FieldCache, m: AxisMap | None, size: int | None) -> AxisField:
    """_axis_field once per map: a layer that keeps its input's map (an activation, batchnorm) shares it.

    Keyed by identity (hashing a map would cost as much as the field); the entry holds the map, so
    its id cannot be reused by another map during the analysis.
    """
    key = (id(m), size)
    found = cache.get(key)
    if found is None:
        found = cache[key] = (m, _axis_field(m, size))
    return found[1]


def _unknown_note(work: _LayerAnalysis, rank: int) -> None:
    """The `rf-unknown` note of the first layer whose field is unknown, with the reason."""
    reasons = {u.reason: (axis, u) for axis, u in sorted(work.unmapped.items())}
    repeats = f"its pattern over output phases repeats only every more than {MAX_PERIOD} units"
    if "units" in reasons:
        axis, unmapped = reasons["units"]
        why = (
            f"is not computed: {repeats}, so convcalc lists every unit, but {_axis_label(rank, axis)} has "
            f"{unmapped.units} units, more than the {MAX_UNITS} it lists per axis"
        )
    elif "period" in reasons:
        why = f"depends on the unknown input size: {repeats}, and listing every unit needs the size; give it"
    else:
        why = "depends on the unknown input size; give the input size to compute it"
    work.diag("rf-unknown", f"the receptive field from here on {why}", max_period=MAX_PERIOD, max_units=MAX_UNITS)


def analyze(stack: StackSpec) -> StackReport:
    """Analyse every layer of `stack` in file order.

    Raises ShapeError with one Problem per failing layer (file, line, layer, field) when PyTorch
    would refuse a layer on this input; layers fed by a failing layer are not analysed further.
    """
    # A long stack's maps and reports are many objects and no cycles (see convcalc.collector).
    with collector.paused():
        return _analyze(stack)


def _analyze(stack: StackSpec) -> StackReport:
    """The analysis itself (analyze runs it with the collector paused)."""
    stack_input = Shape(stack.input.channels, stack.input.spatial)
    field_cache: _FieldCache = {}
    graph = _Graph(stack.layers)
    nodes = graph.nodes
    nodes[INPUT_NAME] = _Node(stack_input, tuple(IDENTITY for _ in stack.input.spatial))
    reports: list[LayerReport] = []
    problems: list[Problem] = []
    reported_exceeds: set[int] = set()
    reported_unknown = False
    for layer in stack.layers:
        inputs = [nodes[name] for name in layer.inputs]
        if any(node is None for node in inputs):
            nodes[layer.name] = None
            continue
        work = _LayerAnalysis(layer, [n for n in inputs if n is not None], stack_input, graph)
        try:
            node = work.run()
            if layer.op == "conv":
                work.finish_macs(work.source.shape.spatial, node.shape, transposed=False)
            elif layer.op == "deconv":
                work.finish_macs(work.source.shape.spatial, node.shape, transposed=True)
        except _LayerProblem as exc:
            where = layer.where(exc.field)
            problems.append(Problem(exc.message, where.file, where.line, where.column, layer.name, exc.field))
            nodes[layer.name] = None
            continue
        fields = tuple(_field_of(field_cache, m, size) for m, size in zip(node.maps, stack.input.spatial, strict=True))
        _compound_note(work, node, fields, [n for n in inputs if n is not None])
        exceeding = [
            (axis, f.rf, size)
            for axis, (f, size) in enumerate(zip(fields, stack.input.spatial, strict=True))
            if f.rf is not None
            and size is not None
            and f.rf > size
            and not f.is_global
            and axis not in reported_exceeds
        ]
        if exceeding:
            reported_exceeds.update(axis for axis, _, _ in exceeding)
            labels = [_axis_label(len(fields), axis) for axis, _, _ in exceeding]
            detail = "; ".join(
                f"{label}: {rf} > {size}" for label, (_, rf, size) in zip(labels, exceeding, strict=True)
            )
            work.diag(
                "rf-exceeds-input",
                f"the receptive field exceeds the input ({detail}); units see padding beyond the borders",
                axes=labels,
                rf=[rf for _, rf, _ in exceeding],
                size=[size for _, _, size in exceeding],
            )
        if not reported_unknown and any(f.rf is None and not f.is_global for f in fields):
            reported_unknown = True
            _unknown_note(work, len(fields))
        nodes[layer.name] = node
        reports.append(
            LayerReport(
                index=layer.index,
                name=layer.name,
                op=layer.op,
                inputs=layer.inputs,
                output=node.shape,
                kernel=work.kernel,
                effective_kernel=work.effective_kernel,
                stride=work.stride,
                padding=work.padding,
                field=fields,
                params=work.params,
                macs=work.macs,
                diagnostics=tuple(work.diagnostics),
                maps=node.maps,
            )
        )
        graph.reports[layer.name] = reports[-1]
    if problems:
        raise ShapeError(problems)
    return StackReport(stack.name, stack.file, stack_input, tuple(reports))
