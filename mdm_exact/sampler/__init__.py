"""The idealised sampler: step rules, the exact engine, the Monte Carlo engine, metrics."""
