"""The evaluation benchmarks (`experiments/evaluate.py --bench=NAME`); importing registers them."""
from critjax.eval.benches.base import BENCHES, Bench, Result  # noqa: F401
from critjax.eval.benches import calibration, judges, processbench, realcritic, scaling  # noqa: F401
