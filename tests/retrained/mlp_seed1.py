"""The mlp regression network retrained from another initialisation (seed 1): same layout."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _retrain import retrained  # noqa: E402

create_model, example_input, held_out_data = retrained("mlp", 1)
