"""One engine: `convcalc conv|deconv|pool` report a layer exactly as `convcalc rf` reports the same layer
as a one-layer stack file — the same numbers, words and JSON keys, and the same refusals.

A differential check over random settings: the calculators build and validate the layer from command-line
options, rf reads it from YAML; the shared keys of both JSON documents must agree (output shape, kernel,
effective kernel, stride, padding, receptive field, jump, centre, params, MACs, diagnostic codes and
messages), and where one refuses the layer the other refuses it with the same message.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cli.main import app

runner = CliRunner()

#: The keys of a layer that both documents carry.
SHARED = ("op", "name", "from", "kernel", "effective_kernel", "stride", "padding", "field", "params", "macs")


def _invoke(args: list[str]) -> tuple[int, dict[str, Any]]:
    result = runner.invoke(app, [*args, "--format", "json", "--fail-on", "never"], env={"COLUMNS": "120"})
    text = result.stdout if result.exit_code == 0 else result.stderr
    return result.exit_code, json.loads(text)


@st.composite
def layers(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["conv", "deconv", "maxpool", "avgpool"]))
    rank = draw(st.integers(1, 3))
    axis = st.lists
    layer: dict[str, Any] = {"kind": kind, "rank": rank}
    layer["kernel"] = draw(axis(st.integers(1, 5), min_size=rank, max_size=rank))
    if draw(st.booleans()):
        layer["stride"] = draw(axis(st.integers(1, 3), min_size=rank, max_size=rank))
    if draw(st.integers(0, 3)) == 0:  # a transposed conv refuses the words, in both commands
        layer["padding"] = draw(st.sampled_from(["same", "valid"]))
    elif draw(st.booleans()):
        layer["padding"] = draw(axis(st.integers(0, 3), min_size=rank, max_size=rank))
    if kind != "avgpool" and draw(st.booleans()):
        layer["dilation"] = draw(axis(st.integers(1, 3), min_size=rank, max_size=rank))
    if kind == "deconv" and draw(st.booleans()):
        layer["output_padding"] = draw(axis(st.integers(0, 2), min_size=rank, max_size=rank))
    if kind in ("maxpool", "avgpool"):
        layer["ceil_mode"] = draw(st.booleans())
    else:
        layer["groups"] = draw(st.sampled_from([1, 2]))
        layer["cin"] = draw(st.sampled_from([2, 3, 4]))
        layer["cout"] = draw(st.sampled_from([2, 4, 6]))
    if draw(st.integers(0, 3)):
        layer["input"] = draw(axis(st.integers(1, 24), min_size=rank, max_size=rank))
    return layer


def _csv(values: list[int]) -> str:
    return ",".join(map(str, values))


def calc_args(layer: dict[str, Any]) -> list[str]:
    kind = layer["kind"]
    args = ["pool" if kind in ("maxpool", "avgpool") else kind, "--k", _csv(layer["kernel"])]
    if layer["rank"] == 1:
        args += ["--dims", "1"]
    for key, flag in (("stride", "--s"), ("dilation", "--d"), ("output_padding", "--op"), ("input", "--i")):
        if key in layer:
            args += [flag, _csv(layer[key])]
    if "padding" in layer:
        pad = layer["padding"]
        args += ["--p", pad if isinstance(pad, str) else _csv(pad)]
    if kind == "avgpool":
        args.append("--avg")
    if layer.get("ceil_mode"):
        args.append("--ceil")
    for key, flag in (("groups", "--groups"), ("cin", "--cin"), ("cout", "--cout")):
        if key in layer:
            args += [flag, str(layer[key])]
    return args


def stack_text(layer: dict[str, Any]) -> str:
    kind = layer["kind"]
    sizes = layer.get("input", [None] * layer["rank"])
    channels = layer.get("cin", 3)
    fields = {"op": kind, "name": kind}
    for key in ("kernel", "stride", "padding", "dilation", "output_padding", "ceil_mode", "groups"):
        if key in layer:
            fields[key] = layer[key]
    if "cout" in layer:
        fields["out"] = layer["cout"]
    return f"input: {json.dumps([channels, *sizes])}\nlayers:\n  - {json.dumps(fields)}\n"


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layer=layers())
def test_calculators_report_the_layer_as_rf_does(layer: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "one.yaml"
    path.write_text(stack_text(layer), encoding="utf-8")
    calc_code, calc = _invoke(calc_args(layer))
    rf_code, rf = _invoke(["rf", str(path)])
    assert calc_code == rf_code, (calc, rf)
    if calc_code != 0:
        event("refused")
        # The same refusal, in the same words (rf adds where; the calculators name the option).
        calc_messages = [p["message"] for p in calc["error"]["problems"]]
        rf_messages = [p["message"] for p in rf["error"]["problems"]]
        assert calc_messages == rf_messages
    else:
        event("analysed")
        (rf_layer,) = rf["layers"]
        mine = calc["layer"]
        for key in SHARED:
            assert mine[key] == rf_layer[key], key
        assert mine["diagnostics"] == rf_layer["diagnostics"]
        if layer["kind"] in ("conv", "deconv"):
            assert calc["input"] == rf["input"]
            assert mine["output"] == rf_layer["output"]
        else:
            # A pool keeps the channels: the calculator has none to keep.
            assert (mine["output"]["channels"], calc["input"]["channels"]) == (None, None)
            assert calc["input"]["spatial"] == rf["input"]["spatial"]
            assert mine["output"]["spatial"] == rf_layer["output"]["spatial"]
        assert calc["axes"] == rf["axes"]
        # The same diagnostics; rf's also say where the layer is written (a calculator's layer is in no file).
        assert [d["location"] for d in calc["diagnostics"]] == [None] * len(calc["diagnostics"])
        assert calc["diagnostics"] == [{**d, "location": None} for d in rf["diagnostics"]]
