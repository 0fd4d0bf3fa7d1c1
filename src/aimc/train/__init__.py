"""On-chip analog training: pulsed in-place weight updates and their optimizers."""
