"""tcdn: Temporal Coherency Deep Networks.

Learn visual features from unlabelled video with temporal-coherence losses (Siamese Ls,
Quadruplet Lq), then discover actions and scenes by clustering frames.

The package is laid out as the pipeline it runs:
``tcdn.data`` (videos -> frames -> tuple samplers), ``tcdn.losses``, ``tcdn.models``,
``tcdn.train``, ``tcdn.features``, ``tcdn.discover``, and ``tcdn.cli`` on top.
"""

from tcdn.errors import TcdnError

__version__ = "0.1.0"
__all__ = ["TcdnError", "__version__"]
