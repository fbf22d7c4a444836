"""Sample-quality metrics, one per module; every function takes features (n, d), never images.

- `fid`: Fréchet distance, FID and weighted FID (distance to the diversity-weighted target).
- `prc`: precision and recall with k-NN manifolds (Kynkäänniemi et al. 2019).
- `inception`: Inception Score as mutual information (no exp, no splits).
- `kid`: Kernel Inception Distance (unbiased MMD², cubic polynomial kernel).
"""

from core.evaluation.metrics.fid import feature_statistics, fid, frechet_distance, weighted_fid
from core.evaluation.metrics.inception import inception_score_from_probs
from core.evaluation.metrics.kid import kid
from core.evaluation.metrics.prc import precision_recall

__all__ = [
    "feature_statistics",
    "fid",
    "frechet_distance",
    "inception_score_from_probs",
    "kid",
    "precision_recall",
    "weighted_fid",
]
