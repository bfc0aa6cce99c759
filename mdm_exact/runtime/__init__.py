"""Infrastructure: the results store, sweeps, provenance and the CLI core."""
