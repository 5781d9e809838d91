"""Training: state with named roles, the jitted update, checkpoints, metric writers and the loop."""
