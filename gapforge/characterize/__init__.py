"""Cost model and characterization: architecture profiles (data files + schema), tiling strategies
as plug-ins, graph walkers (network_info.json and PyTorch FX graphs), per-node estimates of MACs,
bytes per memory level, tiles, latency and energy, and the analysis director.

Modules: profiles (load / validate), graph (walkers), tiling (strategies), model (estimates),
director (models x profiles x sizes -> one table), families (synthetic networks for sweeps),
calibration (per-kernel instruction coefficients fitted on measured counts).
"""
