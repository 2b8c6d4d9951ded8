"""Hardware cost models: measured layer-wise latency tables and analytic device models."""
