"""NumPy kernels: the reference implementations of the ops, mirroring torch.nn.functional (numpy only)."""
