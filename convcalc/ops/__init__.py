"""The ops convcalc knows, one module per family; convcalc.ops.registry lists them."""
