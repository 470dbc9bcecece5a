"""Summary statistics of convergence maps (vectorised over batches, no Python loop over pixels).

Thresholds are always in units of one fixed rms per dataset and noise setting,
never of each map's own rms.
"""

from .features import FEATURE_SETS, FeatureSpec, compute_features
from .minkowski import gaussian_minkowski, minkowski, sigma01
from .pdf import pdf
from .peaks import extremum_counts, local_extrema
from .power import bin_edges, binned_power, mode_power

__all__ = [
    "FEATURE_SETS", "FeatureSpec", "compute_features",
    "gaussian_minkowski", "minkowski", "sigma01", "pdf", "extremum_counts", "local_extrema",
    "bin_edges", "binned_power", "mode_power",
]
