"""gapforge: Brevitas models -> exact INT8 golden reference -> bit-exact C for GAP9."""

import warnings as _warnings

__version__ = "0.1.0"

# Brevitas warns about optional accelerators (fast_hadamard_transform) and internal caches on
# import and on quantizer queries; none of it concerns gapforge's users.
_warnings.filterwarnings("ignore", category=UserWarning, module=r"brevitas(\.|$)")
