"""Summary statistics of convergence maps (vectorised over batches)."""

from .power import bin_edges, binned_power, mode_power

__all__ = ["bin_edges", "binned_power", "mode_power"]
