"""lutnb.codesign: what a design costs and which designs are worth building.

``cost`` (energy and area with cited constants), ``analytic`` (the closed-form cycle model the sweeps
use, checked against `lutnb.hw`), ``accuracy`` (accuracy records: the declared schema experiments write
and the sweeps read), ``workloads`` (named networks as GEMM lists), ``dse`` (sweeps, pruning, Pareto
fronts, baselines), ``explorer`` (the ipywidgets explorer).
"""
