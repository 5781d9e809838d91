"""Host-side rewards: math-verify answer equivalence and sandboxed unit tests, by name."""
from critjax.rewards.registry import REWARDS

__all__ = ["REWARDS"]
