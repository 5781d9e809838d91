"""Method recipes. Importing this package registers every recipe in `RECIPES`."""
from critjax.rl.recipes.base import RECIPES, Collected, Phase, Recipe
from critjax.rl.recipes import correction_baselines, critique_rl, crl, grpo, score  # noqa: F401  (registers them)
from critjax.rl.recipes import critique_grpo  # noqa: F401
from critjax.rl.recipes import spc  # noqa: F401
from critjax.rl.recipes import grm, grm_meta, judged  # noqa: F401
from critjax.rl.recipes import brpo, pairwise_grm, reward_model, self_rationalization  # noqa: F401
from critjax.rl.recipes import multicritique, revise  # noqa: F401
