"""The evaluation benchmarks (`experiments/evaluate.py --bench=NAME`); importing registers them."""
from critjax.eval.benches.base import BENCHES, Bench, Result  # noqa: F401
from critjax.eval.benches import (  # noqa: F401
    calibration, grm_judge, judges, metacritique_bench, premise, processbench, realcritic, refinement, reward_models, scaling)
