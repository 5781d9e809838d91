"""RL core: group advantages, KL estimators, policy-gradient losses and batch filters (pure jnp / host NumPy)."""
