"""Run a whole layer stack on sample data with the NumPy reference ops, and check every predicted shape.

Conventions:
- arrays are batched (N, C, *spatial) like PyTorch; a layer's shape below excludes N, as in `report`;
- weights are deterministic: `"ones"` sets every weight to 1 and every bias to 0 (the classic overlap
  pictures); `"randn"` draws N(0, gain/fan_in) weights and N(0, 1/fan_in) biases per layer, from a
  generator seeded by (seed, layer index), so a layer's weights do not depend on the other layers.
  gain is 2 when the layer feeds a ReLU-family activation (He), else 1 (LeCun): activations stay O(1)
  through deep stacks. The fan-in of a transposed conv is C_in/groups · ∏k / ∏stride (taps per output);
- batchnorm is the inference form of a freshly initialised PyTorch BatchNorm: running mean 0,
  variance 1, weight 1, bias 0 (y = x / sqrt(1 + eps)) for both weight kinds; dropout is the identity;
- pools with asymmetric or 'same' padding are padded explicitly first (max with -inf, avg with zeros)
  and then pooled with padding 0; 'same' is TF SAME at any stride (extra pixel after);
- memory is estimated in bytes from the predicted shapes before anything is allocated (see
  `estimate_memory`); times are wall-clock seconds of the op alone (time.perf_counter).
"""

from __future__ import annotations

import math
import os
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from convcalc.analysis.engine import analyze
from convcalc.analysis.report import StackReport
from convcalc.errors import FileProblemError, MismatchError, Problem, ResourceError, SpecError
from convcalc.execution.files import overwritten_input, umask
from convcalc.geometry.shape import Shape
from convcalc.notation import dims_text
from convcalc.ops import registry
from convcalc.stack.spec import INPUT_NAME, LayerSpec, StackSpec, output_name, output_of

Array = npt.NDArray[Any]
WeightKind = Literal["randn", "ones"]
DType = Literal["float32", "float64"]

#: The default memory limit of a run: 2 GiB.
DEFAULT_MAX_MEMORY = 2 * 1024**3
#: The Python objects of a run (results, statistics, array headers), bounded: 1-2 KiB a layer measured.
BOOKKEEPING_BYTES = 16 * 1024
BOOKKEEPING_PER_LAYER = 2 * 1024
#: The first bytes of every .npy file (numpy.lib.format.MAGIC_PREFIX).
_NPY_MAGIC = b"\x93NUMPY"
#: Sample data convcalc can generate; anything else is a path to a .npy file.
DATA_KINDS = ("randn", "ones", "zeros")
WEIGHT_KINDS: tuple[WeightKind, ...] = ("randn", "ones")
DTYPES: tuple[DType, ...] = ("float32", "float64")


@dataclass(frozen=True)
class LayerParams:
    """The arrays a layer computes with: weight in PyTorch's layout, bias or None."""

    weight: Array
    bias: Array | None


@dataclass(frozen=True)
class Stats:
    """Summary statistics of one output tensor, computed in float64 over all its elements."""

    mean: float
    std: float
    min: float
    max: float


@dataclass(frozen=True)
class LayerRun:
    """One executed layer: predicted and actual shapes (without the batch axis), op time in seconds."""

    index: int
    name: str
    op: str
    inputs: tuple[str, ...]
    predicted: tuple[int, ...]
    actual: tuple[int, ...]
    seconds: float
    stats: Stats

    @property
    def matches(self) -> bool:
        return self.predicted == self.actual


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a run needs at its peak, from the predicted shapes (nothing is allocated to find out).

    The run is followed layer by layer. While a layer runs it holds the input batch (data), the
    layer outputs still to be read, its own included (activations; with outputs kept, every one so
    far; identity and flatten share their source's array), the weights made so far (weights), and
    the temporaries its op allocates besides its inputs and output, or those of its output's
    statistics (workspace; see the ``*_workspace`` functions of convcalc.ops: im2col columns,
    padded copies, ...). The estimate is the largest such sum, at `layer`; the parts are the ones
    there. bookkeeping bounds the run's Python objects (records, statistics, array headers):
    BOOKKEEPING_BYTES plus BOOKKEEPING_PER_LAYER per layer.
    """

    data: int
    activations: int
    weights: int
    workspace: int
    keep_outputs: bool
    layer: str | None = None
    bookkeeping: int = 0

    @property
    def total(self) -> int:
        return self.data + self.activations + self.weights + self.workspace + self.bookkeeping


@dataclass(frozen=True)
class RunFailure:
    """A layer whose op refused an input the arithmetic had accepted (the run stopped there)."""

    layer: str
    message: str


@dataclass(frozen=True)
class RunResult:
    """A finished (or stopped) run: what ran on what, and every executed layer in file order.

    `outputs` holds every layer's output by name (and the input as "input") when the run kept
    them, else only the last executed layer's. `params` are the weights each layer used.
    """

    name: str | None
    file: str | None
    input_shape: tuple[int, ...]
    data: str
    weights: str
    seed: int
    dtype: str
    memory: MemoryEstimate
    max_memory: int
    layers: tuple[LayerRun, ...]
    failure: RunFailure | None = None
    outputs: dict[str, Array] = field(default_factory=dict, compare=False, repr=False)
    params: dict[str, LayerParams] = field(default_factory=dict, compare=False, repr=False)
    #: Said once after the table: NaN or inf in the data.
    notes: tuple[str, ...] = ()

    @property
    def batch(self) -> int:
        return self.input_shape[0]

    @property
    def total_seconds(self) -> float:
        return sum(layer.seconds for layer in self.layers)

    @property
    def mismatches(self) -> tuple[LayerRun, ...]:
        return tuple(layer for layer in self.layers if not layer.matches)

    @property
    def ok(self) -> bool:
        return self.failure is None and not self.mismatches


Progress = Callable[[int, int, LayerRun], None]


# -- public API ---------------------------------------------------------------------------------
def run_stack(
    stack: StackSpec,
    *,
    data: str = "randn",
    weights: WeightKind = "randn",
    seed: int = 0,
    batch: int | None = None,
    dtype: DType = "float32",
    keep_outputs: bool = False,
    max_memory: int = DEFAULT_MAX_MEMORY,
    check: bool = True,
    report: StackReport | None = None,
    progress: Progress | None = None,
) -> RunResult:
    """Execute every layer of `stack` on sample data and compare each output shape with the prediction.

    data: "randn" | "ones" | "zeros" or the path of a .npy array shaped (N, C, *spatial) or
    (C, *spatial). batch: N (default 1, or the .npy's N). report: the predictions to check against
    (default: `analyze(stack)`). progress(done, total, layer) is called after every layer.

    Raises SpecError for unknown input sizes and bad arguments, FileProblemError / SpecError for an
    unusable .npy, ShapeError when the arithmetic refuses the stack, ResourceError when the memory
    estimate exceeds `max_memory` bytes (before allocating anything), and, with `check`,
    MismatchError naming every layer whose actual shape differs from the predicted one (after
    running them all); with check=False the result carries them instead (see `check_result`).
    """
    _check_arguments(data, weights, seed, batch, dtype, max_memory)
    unknown = [i for i, size in enumerate(stack.input.spatial) if size is None]
    if unknown:
        where = stack.input_location
        raise SpecError(
            Problem(
                f"a run needs every input size, but the stack's input "
                f"{_shape_text((stack.input.channels, *stack.input.spatial))} has unknown sizes; "
                "override it with known ones, e.g. 3x224x224",
                where.file or stack.file,
                where.line,
                where.column,
                parameter="input",
            )
        )
    if report is None:
        report = analyze(stack)
    sample_shape = tuple(int(d) for d in (stack.input.channels, *stack.input.spatial) if d is not None)
    npy: Array | None = None
    if data not in DATA_KINDS:
        npy = _open_npy(data)
        batch = _npy_batch(data, tuple(int(d) for d in npy.shape), sample_shape, batch)
    n = 1 if batch is None else batch
    memory = estimate_memory(stack, report, n, dtype, keep_outputs)
    if memory.total > max_memory:
        raise ResourceError(Problem(_memory_message(memory, max_memory, n, dtype), stack.file, parameter="max_memory"))
    x = _sample(data, (n, *sample_shape), np.dtype(dtype), seed, npy)
    predicted = {lr.name: _shape_tuple(lr.output) for lr in report.layers}
    notes: tuple[str, ...] = ()
    if npy is not None:
        del npy
        flat = x.reshape(-1)
        # Counted in chunks: a boolean copy of the whole input would not be in the memory estimate.
        bad = sum(int((~np.isfinite(flat[i : i + _STATS_CHUNK])).sum()) for i in range(0, flat.size, _STATS_CHUNK))
        if bad:
            notes = (
                f"the data holds {bad:,} NaN or infinite value(s): the statistics of every layer that reads "
                "them are NaN or infinite",
            )
    # NaN and inf in the data are the user's to have: no RuntimeWarning from the kernels (the note says it once).
    with np.errstate(all="ignore"):
        done = _execute(stack, predicted, x, weights, seed, keep_outputs, progress)
    result = RunResult(
        name=stack.name,
        file=stack.file,
        input_shape=tuple(int(d) for d in x.shape),
        data=data,
        weights=weights,
        seed=seed,
        dtype=dtype,
        memory=memory,
        max_memory=max_memory,
        layers=tuple(done.records),
        failure=done.failure,
        outputs=done.outputs,
        params=done.params,
        notes=notes,
    )
    if check:
        check_result(result)
    return result


def check_result(result: RunResult) -> None:
    """Raise MismatchError naming every layer whose actual shape differs from the predicted one."""
    problems = [
        Problem(
            f"predicted shape {_shape_text(layer.predicted)} but the ops produced {_shape_text(layer.actual)} "
            f"(op {layer.op})",
            result.file,
            layer=layer.name,
        )
        for layer in result.mismatches
    ]
    if result.failure is not None:
        problems.append(Problem(result.failure.message, result.file, layer=result.failure.layer))
    if problems:
        raise MismatchError(problems)


def estimate_memory(
    stack: StackSpec, report: StackReport, batch: int, dtype: DType, keep_outputs: bool
) -> MemoryEstimate:
    """Bytes the run of `stack` would need at this batch and dtype (see MemoryEstimate), from `report`.

    >>> from convcalc.stack.spec import InputSpec, LayerSpec
    >>> s = StackSpec(InputSpec(1, (4, 4)), (LayerSpec(0, "r", "relu", ("input",)),))
    >>> m = estimate_memory(s, analyze(s), 2, "float32", keep_outputs=True)
    >>> (m.data, m.activations, m.weights)   # 2·16 floats of 4 bytes in, as many out
    (128, 128, 0)
    >>> m.workspace   # relu needs no temporary; its output's statistics a float64 copy and a cast buffer
    512
    """
    item = np.dtype(dtype).itemsize
    shapes: dict[str, Shape] = {INPUT_NAME: report.input}
    for layer_report in report.layers:
        shapes[layer_report.name] = layer_report.output
    produces = _produces(report)
    # A view (identity, flatten) shares its source's array, which lives until both are unused.
    owner = {INPUT_NAME: INPUT_NAME}
    for layer in stack.layers:
        for name in produces.get(layer.index, [layer.name]):
            owner[name] = owner[layer.inputs[0]] if registry.op_of(layer).view else name
    size = {name: batch * _count(shape) for name, shape in shapes.items() if owner[name] == name}
    last_use: dict[str, int] = {}
    for step, layer in enumerate(stack.layers):
        for name in registry.reads(layer):
            last_use[owner[name]] = step
    final = owner[produces.get(stack.layers[-1].index, [stack.layers[-1].name])[-1]]
    weights = 0
    live: set[str] = set()
    peak = (-1, 0, 0, 0, "")  # (bytes besides the input, outputs, weights, workspace, layer)
    params = {lr.name: lr.params or 0 for lr in report.layers}
    for step, layer in enumerate(stack.layers):
        names = produces.get(layer.index, [layer.name])
        weights += sum(params.get(name, 0) for name in names)  # a layer's weights are made when it runs, and kept
        # The outputs of a split are made one after another, each followed by its statistics.
        workspace = max(
            _workspace(layer, shapes, names[0], batch, item),
            *(_stats_workspace(batch * _count(shapes[name])) for name in names),
        )
        live.update(owner[name] for name in names)
        outputs = sum(size[name] for name in live if name != INPUT_NAME) * item
        total = outputs + weights * item + workspace
        if total > peak[0]:
            peak = (total, outputs, weights * item, workspace, layer.name)
        if not keep_outputs:
            live = {name for name in live if last_use.get(name, -1) > step or name == final}
    _, outputs, weight_bytes, workspace, layer_name = peak
    return MemoryEstimate(
        data=size[INPUT_NAME] * item,
        activations=outputs,
        weights=weight_bytes,
        workspace=workspace,
        keep_outputs=keep_outputs,
        layer=layer_name or None,
        bookkeeping=BOOKKEEPING_BYTES + BOOKKEEPING_PER_LAYER * len(stack.layers),
    )


def init_params(
    layer: LayerSpec, in_channels: int, weights: WeightKind, seed: int, dtype: DType, gain: float = 1.0
) -> LayerParams | None:
    """The deterministic weight and bias of a layer with parameters (None for the others).

    Layouts are PyTorch's (the op declares them: conv (C_out, C_in/g, *k), deconv (C_in, C_out/g, *k),
    linear (out, in)). "ones" sets weights to 1 and biases to 0; "randn" draws N(0, gain/fan_in)
    weights and N(0, 1/fan_in) biases from a generator seeded by (seed, layer index).
    """
    declared = {p.name: p for p in registry.op_of(layer).parameters(layer, [Shape(in_channels, ())])}
    if not declared:
        return None
    weight, bias = declared["weight"], declared.get("bias")
    np_dtype = np.dtype(dtype)
    if weights == "ones":
        return LayerParams(np.ones(weight.shape, np_dtype), None if bias is None else np.zeros(bias.shape, np_dtype))
    rng = np.random.default_rng([seed, 1, layer.index])
    w = rng.standard_normal(weight.shape, dtype=np_dtype)
    w *= np_dtype.type(math.sqrt(gain / max(weight.fan_in, 1)))
    b = None
    if bias is not None:
        b = rng.standard_normal(bias.shape, dtype=np_dtype)
        b *= np_dtype.type(1 / math.sqrt(max(bias.fan_in, 1)))
    return LayerParams(w, b)


def save_outputs(outputs: Mapping[str, Array], path: str, overwrite: bool = False, keep: Iterable[str] = ()) -> None:
    """Write `outputs` to the .npz file `path`, one array per name (np.load(path)[name]).

    Written to a temporary file next to `path` and renamed, so a failed write leaves nothing behind
    and nobody can read a half-written file. The file gets the permissions of a newly created one
    (0666 less the umask), or keeps those of the file it replaces. An existing file is refused
    (FileProblemError) unless `overwrite`; the files in `keep` (a run's stack and data) are never
    replaced, whatever `overwrite` says.
    """
    keep = tuple(keep)
    _refuse_inputs(path, keep)
    if os.path.exists(path) and (not overwrite or os.path.isdir(path)):
        what = "a directory" if os.path.isdir(path) else "an existing file"
        raise FileProblemError(
            Problem(f"would overwrite {what}; choose another name or pass overwrite=True", path, parameter="path")
        )
    mode = stat.S_IMODE(os.stat(path).st_mode) & 0o777 if os.path.isfile(path) else 0o666 & ~umask()
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".convcalc-", suffix=".npz", dir=directory)
    except OSError as exc:
        raise FileProblemError(Problem(f"cannot write here: {exc.strerror or exc}", path)) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **dict(outputs))  # type: ignore[arg-type]  # numpy's stub types **kwds as bool
            handle.flush()
            # mkstemp made it 0600; only now that it is complete may others read it, as the umask allows.
            os.fchmod(handle.fileno(), mode)
        if not overwrite and os.path.exists(path):
            raise FileProblemError(Problem("appeared while the run was writing; not overwritten", path))
        _refuse_inputs(path, keep)  # again: the name may have been pointed at an input meanwhile
        os.replace(tmp, path)
    except OSError as exc:
        raise FileProblemError(Problem(f"cannot write the file: {exc.strerror or exc}", path)) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _refuse_inputs(path: str, keep: tuple[str, ...]) -> None:
    clash = overwritten_input(path, keep)
    if clash is not None:
        raise FileProblemError(
            Problem(
                f"would overwrite {clash}, one of the run's own inputs; choose another name", path, parameter="path"
            )
        )


# -- execution ------------------------------------------------------------------------------------
@dataclass
class _Executed:
    records: list[LayerRun] = field(default_factory=list)
    failure: RunFailure | None = None
    outputs: dict[str, Array] = field(default_factory=dict)
    params: dict[str, LayerParams] = field(default_factory=dict)


def _execute(
    stack: StackSpec,
    predicted: Mapping[str, tuple[int, ...]],
    x: Array,
    weights: WeightKind,
    seed: int,
    keep_outputs: bool,
    progress: Progress | None,
) -> _Executed:
    """One pass over the stack; each value is freed after its last consumer unless outputs are kept."""
    dtype: DType = "float64" if x.dtype == np.float64 else "float32"
    gains = _gains(stack)
    last_use = _last_use(stack)
    final = stack.layers[-1].name
    values: dict[str, Array] = {INPUT_NAME: x}
    done = _Executed()
    for step, layer in enumerate(stack.layers):
        reads = registry.reads(layer)
        xs = [values[name] for name in reads]  # `from`, then the layers named by fields (`like`)
        op = registry.op_of(layer)
        # A split's outputs (`sp.0`, `sp.1`, ...) are computed, timed and recorded one by one.
        count = op.output_count(layer, int(xs[0].shape[1])) if op.multi_output else 1
        names = [output_name(layer.name, i) for i in range(count)] if op.multi_output else [layer.name]
        for part, name in enumerate(names):
            try:
                p = init_params(layer, int(xs[0].shape[1]), weights, seed, dtype, gains[layer.name])
                start = time.perf_counter()
                y = op.execute_output(layer, xs, part) if op.multi_output else _apply(layer, xs, p)
                seconds = time.perf_counter() - start
            except ValueError as exc:
                shapes = ", ".join(f"{source} {_shape_text(v.shape[1:])}" for source, v in zip(reads, xs, strict=True))
                done.failure = RunFailure(
                    layer.name,
                    f"the op refused its input ({shapes}) although the arithmetic predicted "
                    f"{_shape_text(predicted.get(name, ()))}: {exc}",
                )
                break
            if p is not None:
                done.params[layer.name] = p
            values[name] = y
            actual = tuple(int(d) for d in y.shape[1:])
            record = LayerRun(
                layer.index, name, layer.op, layer.inputs, predicted.get(name, ()), actual, seconds, _stats(y)
            )
            done.records.append(record)
            del y
        if done.failure is not None:
            break
        if progress is not None:
            progress(step + 1, len(stack.layers), done.records[-1])
        if not keep_outputs:
            kept = names if layer.name == final else []  # the last layer's outputs are the run's
            for name in {*reads, *names}:
                if last_use.get(name, -1) <= step and name != final and name not in kept and name in values:
                    del values[name]
        # Otherwise these names would hold a freed value through the next layer's op.
        del xs
    if keep_outputs:
        done.outputs = values
    elif done.records and done.records[-1].name in values:
        last = done.records[-1].name
        done.outputs = {last: values[last]}
    return done


def _apply(layer: LayerSpec, xs: list[Array], p: LayerParams | None) -> Array:
    """One layer on its input arrays with its op's NumPy kernel (ValueError when a kernel refuses)."""
    params: dict[str, Array] = {}
    if p is not None:
        params["weight"] = p.weight
        if p.bias is not None:
            params["bias"] = p.bias
    out: Array = registry.op_of(layer).execute(layer, xs, params)
    return out


_STATS_CHUNK = 1 << 15  # elements; the statistics' float64 temporaries are at most this long


def _stats(y: Array) -> Stats:
    """Mean, population std, min, max in float64, two passes over chunks (no full-size temporaries)."""
    flat = y.reshape(-1)
    chunks = [flat[i : i + _STATS_CHUNK] for i in range(0, flat.size, _STATS_CHUNK)]
    with np.errstate(invalid="ignore", over="ignore"):  # ±inf outputs (max pool over -inf padding) give nan
        mean = sum(float(np.sum(c, dtype=np.float64)) for c in chunks) / flat.size
        deviation = np.empty(min(flat.size, _STATS_CHUNK), np.float64)
        square = 0.0
        for c in chunks:
            d = deviation[: c.size]
            np.copyto(d, c)  # to float64 first: the difference is taken in float64
            d -= mean
            np.square(d, out=d)
            square += float(np.sum(d))
    return Stats(
        mean,
        math.sqrt(square / flat.size) if math.isfinite(square) else math.nan,
        float(np.min(flat)),
        float(np.max(flat)),
    )


def _stats_workspace(numel: int) -> int:
    """Bytes `_stats` allocates for an output of `numel` elements: one float64 chunk, and the buffer
    (8192 elements) numpy casts a float32 chunk through while summing it in float64."""
    return min(numel, _STATS_CHUNK) * 8 + min(numel, 8192) * 8


# -- data --------------------------------------------------------------------------------------------
def _check_arguments(data: str, weights: str, seed: int, batch: int | None, dtype: str, max_memory: int) -> None:
    problems = []
    if weights not in WEIGHT_KINDS:
        problems.append(
            Problem(f"weights must be one of {', '.join(WEIGHT_KINDS)}, got {weights!r}", parameter="weights")
        )
    if dtype not in DTYPES:
        problems.append(Problem(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}", parameter="dtype"))
    if seed < 0:
        problems.append(Problem(f"the seed must be a non-negative integer, got {seed}", parameter="seed"))
    if batch is not None and batch < 1:
        problems.append(Problem(f"the batch size must be at least 1, got {batch}", parameter="batch"))
    if max_memory < 1:
        problems.append(Problem(f"the memory limit must be positive, got {max_memory} bytes", parameter="max_memory"))
    if not data:
        problems.append(Problem(f"data must be one of {', '.join(DATA_KINDS)} or a .npy file", parameter="data"))
    if problems:
        raise SpecError(problems)


def _open_npy(path: str) -> Array:
    """The .npy array at `path`, memory-mapped: its shape and dtype are known without reading the data."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise FileProblemError(
            Problem(f"cannot read the file: {exc.strerror or exc}", path, parameter="data")
        ) from None
    if mode is not None and stat.S_ISDIR(mode):
        raise FileProblemError(Problem("is a directory, not a .npy file", path, parameter="data"))
    if mode is not None and not stat.S_ISREG(mode):
        # Opening a FIFO waits for a writer, and a device never ends: only regular files are read.
        raise FileProblemError(
            Problem("is not a regular file (a pipe or a device); give a .npy file", path, parameter="data")
        )
    try:
        with open(path, "rb") as handle:
            magic = handle.read(len(_NPY_MAGIC))
        if magic == b"PK\x03\x04":
            raise FileProblemError(
                Problem(
                    "a .npz archive; the data must be one array saved with numpy.save (.npy)", path, parameter="data"
                )
            )
        if magic != _NPY_MAGIC:
            raise FileProblemError(
                Problem(
                    "not a .npy file (it does not start with the .npy header); save one with numpy.save",
                    path,
                    parameter="data",
                )
            )
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise FileProblemError(
            Problem(
                f"no such file; the data is {', '.join(DATA_KINDS)} or the path of a .npy array",
                path,
                parameter="data",
            )
        ) from None
    except OSError as exc:
        raise FileProblemError(
            Problem(f"cannot read the file: {exc.strerror or exc}", path, parameter="data")
        ) from None
    except ValueError as exc:
        # numpy's own text for an object array suggests loading it unsafely: never say that.
        text = str(exc).lower()
        objects = "pickle" in text or "object" in text
        reason = "it holds Python objects, not numbers" if objects else "its header is damaged"
        raise FileProblemError(
            Problem(
                f"not a usable .npy array: {reason}; save an array of numbers with numpy.save", path, parameter="data"
            )
        ) from None
    if not isinstance(arr, np.ndarray):
        arr.close()
        raise FileProblemError(
            Problem("a .npz archive; the data must be one array saved with numpy.save (.npy)", path, parameter="data")
        )
    if arr.dtype.kind not in "biuf":
        raise SpecError(Problem(f"the array's dtype {arr.dtype} is not real numbers", path, parameter="data"))
    return arr


def _npy_batch(path: str, shape: tuple[int, ...], sample: tuple[int, ...], batch: int | None) -> int | None:
    """The batch size a .npy of `shape` gives for per-sample shape `sample` (SpecError if it does not fit)."""
    if shape == sample:
        return batch
    if not shape:
        raise SpecError(
            Problem(
                f"the array is 0-d (one number, no dimensions), but the stack's input is {_shape_text(sample)}: "
                f"the array must be (N, {', '.join(map(str, sample))}) or ({', '.join(map(str, sample))})",
                path,
                parameter="data",
            )
        )
    if len(shape) == len(sample) + 1 and shape[1:] == sample:
        if shape[0] == 0:
            raise SpecError(
                Problem(
                    f"the array has shape {_shape_text(shape)}: a batch of 0 samples (a run needs at least 1)",
                    path,
                    parameter="data",
                )
            )
        if batch is not None and batch != shape[0]:
            raise SpecError(
                Problem(
                    f"the array holds a batch of {shape[0]}, but the batch size asked for is {batch}; "
                    "ask for none or make them agree",
                    path,
                    parameter="data",
                )
            )
        return shape[0]
    want = _shape_text(sample)
    raise SpecError(
        Problem(
            f"the array has shape {_shape_text(shape)}, but the stack's input is {want}: the array must be "
            f"(N, {', '.join(map(str, sample))}) or ({', '.join(map(str, sample))}); override the stack's input "
            f"with the array's own shape ({_shape_text(shape[-len(sample) :], 'x')}) if the stack should take it",
            path,
            parameter="data",
        )
    )


def _sample(data: str, shape: tuple[int, ...], dtype: np.dtype[Any], seed: int, npy: Array | None) -> Array:
    if npy is not None:
        # One allocation: the cast (and the repeat of one sample over the batch) happen in the copy.
        x = np.empty(shape, dtype)
        x[...] = npy
        return x
    if data == "ones":
        return np.ones(shape, dtype)
    if data == "zeros":
        return np.zeros(shape, dtype)
    return np.random.default_rng([seed, 0]).standard_normal(shape, dtype=dtype)


# -- memory ----------------------------------------------------------------------------------------
def _count(shape: Shape) -> int:
    return math.prod(int(d) for d in (shape.channels, *shape.spatial) if d is not None)


def _produces(report: StackReport) -> dict[int, list[str]]:
    """The tensors each layer (by index) produces: its own name, or `sp.0`, `sp.1`, ... for a split."""
    produces: dict[int, list[str]] = {}
    for layer in report.layers:
        produces.setdefault(layer.index, []).append(layer.name)
    return produces


def _workspace(layer: LayerSpec, shapes: Mapping[str, Shape], output: str, batch: int, itemsize: int) -> int:
    """Bytes of the temporaries `layer` allocates besides its inputs and its output `output` (see
    MemoryEstimate)."""
    inputs = [(batch, *(int(d or 0) for d in (shapes[n].channels, *shapes[n].spatial))) for n in layer.inputs]
    try:
        return registry.op_of(layer).workspace(layer, inputs, shapes[output], itemsize)
    except ValueError:
        return 0  # the op refuses this input: the run stops there and says so (RunFailure)


def _last_use(stack: StackSpec) -> dict[str, int]:
    """For every value, the step of its last consumer."""
    last: dict[str, int] = {}
    for step, layer in enumerate(stack.layers):
        for name in registry.reads(layer):
            last[name] = step
    return last


def _gains(stack: StackSpec) -> dict[str, float]:
    """2 for layers whose output reaches a ReLU-family activation (through batchnorm, dropout, identity),
    1 otherwise. Layers are visited last to first, so each answer is known when a producer asks: linear."""
    consumers: dict[str, list[LayerSpec]] = {}
    layers = {layer.name for layer in stack.layers}
    for layer in stack.layers:
        for name in layer.inputs:
            found = output_of(name)
            producer = found[0] if name not in layers and found is not None else name  # `sp.1`: sp
            consumers.setdefault(producer, []).append(layer)
    feeds: dict[str, bool] = {}
    for layer in reversed(stack.layers):
        feeds[layer.name] = any(
            registry.op_of(c).relu_like or (registry.op_of(c).passes_scale and feeds[c.name])
            for c in consumers.get(layer.name, [])
        )
    return {name: 2.0 if relu else 1.0 for name, relu in feeds.items()}


def format_bytes(n: int) -> str:
    """Binary units, 3 significant digits: 1536 → '1.5 KiB', 2147483648 → '2 GiB'.

    >>> format_bytes(512), format_bytes(1536), format_bytes(2 * 1024**3), format_bytes(3 * 10**15)
    ('512 B', '1.5 KiB', '2 GiB', '2.66 PiB')
    """
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024:
            return f"{value:.3g} {unit}" if unit != "B" else f"{n} B"
        value /= 1024
    return f"{value:.3g} PiB"


def _memory_message(m: MemoryEstimate, limit: int, batch: int, dtype: str) -> str:
    parts = [
        f"input {format_bytes(m.data)}",
        f"{'kept layer outputs' if m.keep_outputs else 'live layer outputs'} {format_bytes(m.activations)}",
        f"weights {format_bytes(m.weights)}",
        f"op workspace {format_bytes(m.workspace)}",
        f"bookkeeping {format_bytes(m.bookkeeping)}",
    ]
    where = f" at layer {m.layer}" if m.layer is not None else ""
    ways = ["a smaller input"]
    if batch > 1:
        ways.append(f"a smaller batch (now {batch})")
    if dtype == "float64":
        ways.append("float32 (halves it)")
    if m.keep_outputs:
        ways.append("not keeping every output (only live ones)")
    return (
        f"the run would need about {format_bytes(m.total)}{where} ({'; '.join(parts)}), more than the memory limit "
        f"{format_bytes(limit)}; lower it with {', '.join(ways)}, or raise the limit"
    )


def _shape_tuple(shape: Shape) -> tuple[int, ...]:
    return tuple(-1 if d is None else int(d) for d in (shape.channels, *shape.spatial))


def _shape_text(shape: tuple[int | None, ...], sep: str = "×") -> str:
    # A 0-d array has no dimensions: say so rather than print an empty shape.
    return dims_text(shape, sep) if shape else "() (0-d)"
