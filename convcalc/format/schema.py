"""The stack format (version 1) as a JSON Schema (draft 2020-12), generated from the ops' fields.

The same `Field` declarations that drive the loader's validation describe each op here, so the schema
and the loader cannot drift apart: every document the loader accepts, the schema accepts. The schema
checks structure (keys, types, ranges, choices, how many inputs an op reads); what depends on the
graph or the input size (a `from` naming an unknown layer, a kernel larger than the input, rules
between fields such as `scale` or `size` but not both) is left to the loader, which says why.

Inside a block, any value may be a `${...}` expression (or a list holding one), evaluated per instance.
"""

from __future__ import annotations

from typing import Any

from convcalc.format import blocks
from convcalc.format.contracts import contract_schemas
from convcalc.ops import registry
from convcalc.ops.base import Op
from convcalc.stack.fields import Schema
from convcalc.stack.spec import FORMAT_VERSION, INPUT_NAME

#: The schema's `$id`: a name, not an address (save `convcalc schema` output and point editors at the file).
SCHEMA_ID = "urn:convcalc:schema:stack:1"

_EXPRESSION: Schema = {
    "description": "an expression evaluated per block instance, e.g. '${width * 4}'",
    "type": "string",
    "pattern": r"\$\{",
}


def _name_list(least: int, most: int | None) -> Schema:
    names: Schema = {"type": "array", "items": {"$ref": "#/$defs/name"}, "minItems": max(least, 1)}
    if most is not None:
        names["maxItems"] = most
    return names


def _from(op: Op[Any]) -> Schema:
    least, most = op.arity
    doc = "the producers: a layer name, 'input' or a list of names; default the previous layer"
    if least >= 2:
        return {**_name_list(least, most), "description": f"the {least} or more layers {op.name} reads"}
    return {"oneOf": [{"$ref": "#/$defs/name"}, _name_list(least, most)], "description": doc}


def _templated(schema: Schema) -> Schema:
    """`schema`, or an expression (or a list with an expression somewhere inside)."""
    return {"anyOf": [schema, {"$ref": "#/$defs/templated"}]}


def layer_schema(op: Op[Any], in_block: bool = False) -> Schema:
    """One layer of `op`: its fields (with meanings and defaults), `op`, `name`, `from` (and `when` in a block)."""
    wrap = _templated if in_block else (lambda s: s)
    properties: dict[str, Schema] = {
        "op": {"enum": [op.name, *op.aliases], "description": op.summary},
        "name": wrap({"$ref": "#/$defs/layer_name"}),
        "from": wrap(_from(op)),
    }
    if in_block:
        properties["when"] = {
            "anyOf": [{"type": "boolean"}, _EXPRESSION],
            "description": "leave the layer out (passing its input through) where false",
        }
    for field in op.fields:
        properties[field.name] = wrap(field.schema())
    required = ["op", *(f.name for f in op.fields if f.required)]
    if op.arity[0] >= 2:
        required.append("from")
    return {
        "type": "object",
        "title": op.name,
        "description": op.summary,
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def _block_call(in_block: bool) -> Schema:
    wrap = _templated if in_block else (lambda s: s)
    arguments: Schema = {"type": "object", "propertyNames": {"$ref": "#/$defs/name"}}
    return {
        "type": "object",
        "title": "block use",
        "description": "one or more instances of a block defined under `blocks:`",
        "properties": {
            "block": {"type": "string", "minLength": 1, "description": "the block's name"},
            "name": wrap({"$ref": "#/$defs/layer_name"}),
            "from": wrap({"oneOf": [{"$ref": "#/$defs/name"}, _name_list(1, None)]}),
            "repeat": wrap({"type": "integer", "minimum": 1, "description": "instances, chained; default 1"}),
            "names": {
                "type": "string",
                "minLength": 1,
                "description": "the instances' names, a template such as 'denselayer${index + 1}'",
            },
            "with": {**arguments, "description": "parameters for every instance"},
            "first": {**arguments, "description": "parameters for instance 0 (override `with`)"},
            "when": {
                "anyOf": [{"type": "boolean"}, _EXPRESSION] if in_block else [{"type": "boolean"}],
                "description": "leave the whole use out (its readers read its input) where false",
            },
        },
        "required": ["block"],
        "additionalProperties": False,
    }


def _group(in_block: bool) -> Schema:
    wrap = _templated if in_block else (lambda s: s)
    return {
        "type": "object",
        "title": "group",
        "description": "plain layers under one name: `NAME.layer`; NAME stands for the last",
        "properties": {
            "group": {"$ref": "#/$defs/layer_name"},
            "from": wrap({"$ref": "#/$defs/name"}),
            "layers": {"$ref": "#/$defs/block_layers" if in_block else "#/$defs/layers"},
        },
        "required": ["group", "layers"],
        "additionalProperties": False,
    }


def _layers(in_block: bool) -> Schema:
    ops = [layer_schema(op, in_block) for op in registry.OPS.values()]
    if in_block:
        # `op: ${act}` picks the op per instance: its fields are checked once it is known.
        ops.append(
            {
                "type": "object",
                "title": "templated op",
                "properties": {"op": _EXPRESSION},
                "required": ["op"],
            }
        )
    return {"type": "array", "minItems": 1, "items": {"oneOf": [*ops, _block_call(in_block), _group(in_block)]}}


def stack_schema() -> Schema:
    """The JSON Schema of a version-1 stack file, with a description and default for every field."""
    assert set(blocks.CALL_FIELDS) <= {"block", "name", "from", "repeat", "names", "with", "first", "when"}, "new key"
    assert set(blocks.GROUP_FIELDS) <= {"group", "from", "layers"}, "update _group"
    size: Schema = {"type": ["integer", "null"], "minimum": 1}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "convcalc layer stack",
        "description": "A convolutional layer stack for convcalc (version 1): input shape and layers, PyTorch's "
        "names and defaults.",
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "the stack's name"},
            "description": {"type": "string", "description": "one line, shown by `convcalc list`"},
            "version": {"const": FORMAT_VERSION, "description": "the format version"},
            "input": {
                "description": "[channels, spatial...]: 1 to 3 spatial sizes, null where unknown",
                "type": "array",
                "prefixItems": [{"type": "integer", "minimum": 1}],
                "items": size,
                "minItems": 2,
                "maxItems": 4,
            },
            "blocks": {
                "type": "object",
                "description": "sub-graphs defined once and used with `block:`",
                "propertyNames": {"$ref": "#/$defs/name"},
                "additionalProperties": {"$ref": "#/$defs/block"},
            },
            "layers": {
                "$ref": "#/$defs/layers",
                "description": "the layers in order; each reads the previous by default",
            },
            **contract_schemas(),
        },
        "required": ["input", "layers"],
        "additionalProperties": False,
        "$defs": {
            "name": {"type": "string", "minLength": 1},
            "layers": _layers(False),
            "block_layers": _layers(True),
            "layer_name": {
                "type": "string",
                "minLength": 1,
                "not": {"const": INPUT_NAME},
                "description": f"unique; default <op><n>; '{INPUT_NAME}' names the stack input",
            },
            "templated": {
                "anyOf": [_EXPRESSION, {"type": "array", "contains": {"$ref": "#/$defs/templated"}}],
            },
            "block": {
                "type": "object",
                "properties": {
                    "params": {
                        "type": "object",
                        "description": "parameter defaults; null = required",
                        "propertyNames": {"$ref": "#/$defs/name"},
                    },
                    "layers": {"$ref": "#/$defs/block_layers"},
                    "output": {"$ref": "#/$defs/name", "description": "the layer whose output the block gives"},
                },
                "required": ["layers"],
                "additionalProperties": False,
            },
        },
    }
