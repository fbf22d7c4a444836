"""Sample-quality metrics, one per module; every function takes features (n, d), never images.

- `fid`: Fréchet distance, FID and weighted FID (distance to the diversity-weighted target).
- `prc`: precision and recall with k-NN manifolds (Kynkäänniemi et al. 2019).
- `inception`: Inception Score as mutual information (no exp, no splits).
- `kid`: Kernel Inception Distance (unbiased MMD², cubic polynomial kernel).
"""

from .fid import feature_statistics, fid, frechet_distance, weighted_fid
from .inception import inception_score_from_probs
from .kid import kid
from .prc import precision_recall

__all__ = [
    "feature_statistics",
    "fid",
    "frechet_distance",
    "inception_score_from_probs",
    "kid",
    "precision_recall",
    "weighted_fid",
]
