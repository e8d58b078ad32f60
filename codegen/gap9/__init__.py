"""GAP9 memory-hierarchy planning: hardware model, L1 tiling, L2/L3 placement, plan report."""
