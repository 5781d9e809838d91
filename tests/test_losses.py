"""Policy loss, KL estimators and NLL against hand computations and an independent float64 NumPy reference."""
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from critjax.rl import kl as K
from critjax.rl.losses import LossConfig, mean_of, nll_loss, policy_loss

LN = math.log


# --------------------------------------------------------------------------------------------------
# Independent float64 reference: explicit loops over sequences and tokens, from ALGORITHMS.md Sec. 0/1.

def np_kl(kind, logp, ref):
  d = ref - logp
  if kind == "k1":
    return -d
  if kind == "k2":
    return 0.5 * d * d
  d = min(max(d, -20.0), 20.0)
  return min(max(math.exp(d) - d - 1.0, -10.0), 10.0)


def np_loss(logp, old, adv, mask, *, ratio="token", lo=0.2, hi=0.2, c=None, kl="k3", beta=0.0, ref=None,
            agg="seq_mean_token_mean", norm_len=None, ent_coef=0.0, ent=None):
  logp, old, adv = (np.asarray(x, np.float64) for x in (logp, old, adv))
  b_count, t_count = logp.shape
  seq_terms, tok_sum, tok_n = [], 0.0, 0
  for i in range(b_count):
    idx = [t for t in range(t_count) if mask[i][t]]
    if not idx:
      continue
    s = math.exp(sum(logp[i, t] - old[i, t] for t in idx) / len(idx))
    ls = []
    for t in idx:
      r = math.exp(logp[i, t] - old[i, t]) if ratio == "token" else s
      a = adv[i, t]
      l = -min(r * a, min(max(r, 1 - lo), 1 + hi) * a)
      if c is not None and a < 0:
        l = min(l, -c * a)
      b = beta if np.isscalar(beta) else beta[i][t]
      if b:
        l += b * np_kl(kl, logp[i, t], ref[i][t])
      if ent_coef:
        l -= ent_coef * ent[i][t]
      ls.append(l)
    tok_sum += sum(ls)
    tok_n += len(ls)
    seq_terms.append(sum(ls) / len(ls) if agg == "seq_mean_token_mean" else sum(ls) / (norm_len or 1))
  if agg == "token_mean":
    return tok_sum / tok_n
  return sum(seq_terms) / len(seq_terms)


def jloss(cfg, logp, old, adv, mask, **kw):
  total, denom, metrics = policy_loss(jnp.asarray(logp, jnp.float32), jnp.asarray(old, jnp.float32),
                                      jnp.asarray(adv, jnp.float32), jnp.asarray(mask), cfg, **kw)
  return float(total / denom), metrics


# --------------------------------------------------------------------------------------------------
# Hand-computed case (used by several tests). ratios: seq 0 = (1.5, 0.5), A = +1;
# seq 1 = (0.5, 1.5, 1.0), A = -1. Symmetric clip 0.2, per-token loss = -min(rA, clip(r)A):
#   seq 0: 1.5 -> -1.2 (clipped), 0.5 -> -0.5
#   seq 1: 0.5 -> +0.8 (clipped), 1.5 -> +1.5, 1.0 -> +1.0
HAND_OLD = np.zeros((2, 3))
HAND_LOGP = np.array([[LN(1.5), LN(0.5), 0.0], [LN(0.5), LN(1.5), 0.0]])
HAND_ADV = np.array([[1.0, 1.0, 1.0], [-1.0, -1.0, -1.0]])
HAND_MASK = np.array([[1, 1, 0], [1, 1, 1]], bool)


@pytest.mark.parametrize("agg,norm_len,expected", [
    ("seq_mean_token_mean", None, 0.125),       # ((-1.2 - 0.5)/2 + (0.8 + 1.5 + 1.0)/3) / 2
    ("token_mean", None, 0.32),                 # (-1.2 - 0.5 + 0.8 + 1.5 + 1.0) / 5
    ("seq_mean_token_sum_norm", 4, 0.2),        # ((-1.7)/4 + 3.3/4) / 2
])
def test_hand_symmetric_clip_each_aggregation(agg, norm_len, expected):
  cfg = LossConfig(aggregation=agg, norm_len=norm_len)
  loss, metrics = jloss(cfg, HAND_LOGP, HAND_OLD, HAND_ADV, HAND_MASK)
  assert loss == pytest.approx(expected, abs=1e-6)
  s, d = metrics["clip_frac"]
  assert float(s / d) == pytest.approx(2 / 5)
  s, d = metrics["ratio_mean"]
  assert float(s / d) == pytest.approx((1.5 + 0.5 + 0.5 + 1.5 + 1.0) / 5, abs=1e-6)


def test_hand_asymmetric_clip():
  # clip-higher 0.2 / 0.28: seq 0 token 0 clipped at 1.28 -> -1.28; seq 1 token 0 clipped at 0.8 -> 0.8
  cfg = LossConfig(clip_low=0.2, clip_high=0.28, aggregation="token_mean")
  loss, _ = jloss(cfg, HAND_LOGP, HAND_OLD, HAND_ADV, HAND_MASK)
  assert loss == pytest.approx((-1.28 - 0.5 + 0.8 + 1.5 + 1.0) / 5, abs=1e-6)


def test_hand_dual_clip():
  # A = -2, r = 4: -min(-8, -2.4) = 8, capped at -A*c = 6.  A = -2, r = 2: loss 4 < 6, untouched.
  # A = +1, r = 4: -min(4, 1.2) = -1.2, dual clip does not apply to A > 0.
  logp = np.array([[LN(4.0), LN(2.0), LN(4.0)]])
  adv = np.array([[-2.0, -2.0, 1.0]])
  cfg = LossConfig(dual_clip_c=3.0, aggregation="token_mean")
  loss, metrics = jloss(cfg, logp, np.zeros((1, 3)), adv, np.ones((1, 3), bool))
  assert loss == pytest.approx((6.0 + 4.0 - 1.2) / 3, abs=1e-5)
  s, d = metrics["dual_clip_frac"]
  assert float(s / d) == pytest.approx(1 / 3)


def test_hand_gspo_sequence_ratio():
  # seq 0: log-ratios (ln 2, 0) -> s = sqrt(2) = 1.4142, A = 1 -> clipped 1.2 -> loss -1.2
  # seq 1: log-ratios (ln .9, ln .9) -> s = 0.9, A = 1 -> loss -0.9;  seq mean = -1.05
  logp = np.array([[LN(2.0), 0.0], [LN(0.9), LN(0.9)]])
  cfg = LossConfig(ratio="sequence")
  loss, metrics = jloss(cfg, logp, np.zeros((2, 2)), np.ones((2, 2)), np.ones((2, 2), bool))
  assert loss == pytest.approx(-1.05, abs=1e-6)
  s, d = metrics["ratio_mean"]
  assert float(s / d) == pytest.approx((2 * math.sqrt(2) + 2 * 0.9) / 4, abs=1e-6)


def test_hand_kl_estimators():
  # pi = 0.5, pi_ref = 0.25: d = ln 0.5 = -0.693147
  logp, ref = jnp.array([[LN(0.5)]]), jnp.array([[LN(0.25)]])
  assert float(K.k1(logp, ref)[0, 0]) == pytest.approx(0.693147, abs=1e-6)
  assert float(K.k2(logp, ref)[0, 0]) == pytest.approx(0.240227, abs=1e-6)
  assert float(K.k3(logp, ref)[0, 0]) == pytest.approx(0.5 + 0.693147 - 1.0, abs=1e-6)


@pytest.mark.parametrize("kind", ["k1", "k2", "k3"])
def test_kl_against_numpy(kind):
  rng = np.random.default_rng(1)
  logp = rng.normal(-2, 1, size=(3, 7))
  ref = logp + rng.normal(0, 2, size=(3, 7))
  ref[0, 0] = logp[0, 0] + 30.0        # k3 clamps: d -> 20, estimate -> 10
  got = np.asarray(K.KL_ESTIMATORS.get(kind)(jnp.asarray(logp, jnp.float32), jnp.asarray(ref, jnp.float32)))
  want = np.vectorize(functools.partial(np_kl, kind))(logp, ref)
  np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5)
  if kind == "k3":
    assert got[0, 0] == pytest.approx(10.0)


# --------------------------------------------------------------------------------------------------
# Random cases against the NumPy reference.

def random_batch(seed, b=8, t=6, spread=0.3):
  rng = np.random.default_rng(seed)
  lengths = rng.integers(1, t + 1, size=b)
  lengths[3] = 0                                       # an all-pad row
  mask = np.arange(t)[None, :] < lengths[:, None]
  logp = rng.normal(-1.5, 0.5, size=(b, t))
  old = logp + rng.normal(0, spread, size=(b, t))      # ratios spread around 1: both clip sides active
  adv = np.repeat(rng.normal(0, 1, size=(b, 1)), t, axis=1)
  ref = logp + rng.normal(0, 0.5, size=(b, t))
  ent = rng.random((b, t))
  adv[0] = -abs(adv[0]) - 0.1                          # ratio 4.5 with A < 0: dual clip (c = 3) active
  old[0, 0] = logp[0, 0] - 1.5
  return logp, old, adv, mask, ref, ent


CASES = {
    "grpo_kl": dict(cfg=LossConfig(kl_coef=0.04), np=dict(beta=0.04)),
    "dapo": dict(cfg=LossConfig(clip_high=0.28, aggregation="token_mean", dual_clip_c=3.0),
                 np=dict(hi=0.28, agg="token_mean", c=3.0)),
    "drgrpo": dict(cfg=LossConfig(aggregation="seq_mean_token_sum_norm", norm_len=6),
                   np=dict(agg="seq_mean_token_sum_norm", norm_len=6)),
    "gspo": dict(cfg=LossConfig(ratio="sequence", clip_low=0.05, clip_high=0.06), np=dict(ratio="sequence", lo=0.05, hi=0.06)),
    "k2_entropy": dict(cfg=LossConfig(kl_estimator="k2", kl_coef=0.1, entropy_coef=0.01, aggregation="token_mean"),
                       np=dict(kl="k2", beta=0.1, ent_coef=0.01, agg="token_mean")),
    "k1": dict(cfg=LossConfig(kl_estimator="k1", kl_coef=0.2), np=dict(kl="k1", beta=0.2)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_against_numpy(name):
  logp, old, adv, mask, ref, ent = random_batch(2)
  case = CASES[name]
  got, metrics = jloss(case["cfg"], logp, old, adv, mask, ref_logp_bt=jnp.asarray(ref, jnp.float32),
                       entropy_bt=jnp.asarray(ent, jnp.float32))
  want = np_loss(logp, old, adv, mask, ref=ref, ent=ent, **case["np"])
  assert got == pytest.approx(want, rel=1e-5, abs=1e-6)
  s, d = metrics["clip_frac"]
  assert float(d) == mask.sum()
  if name in ("grpo_kl", "dapo"):
    assert 0.0 < float(s / d) < 1.0                      # clipping actually happens in this case
  if name == "dapo":
    assert float(metrics["dual_clip_frac"][0]) >= 1.0


def test_per_token_kl_coef():
  """SCoRe stage I: beta2 = 0.1 on turn-1 tokens, beta1 = 0.01 on turn-2 tokens, overriding cfg.kl_coef."""
  logp, old, adv, mask, ref, _ = random_batch(3)
  beta = np.where(np.arange(6)[None, :] < 3, 0.1, 0.01) * np.ones_like(logp)
  cfg = LossConfig(kl_coef=0.5)
  got, _ = jloss(cfg, logp, old, adv, mask, ref_logp_bt=jnp.asarray(ref, jnp.float32),
                 kl_coef_bt=jnp.asarray(beta, jnp.float32))
  assert got == pytest.approx(np_loss(logp, old, adv, mask, ref=ref, beta=beta), rel=1e-5, abs=1e-6)
  # with cfg.kl_coef = 0, per-token betas still switch the KL term on
  got0, _ = jloss(LossConfig(), logp, old, adv, mask, ref_logp_bt=jnp.asarray(ref, jnp.float32),
                  kl_coef_bt=jnp.asarray(beta, jnp.float32))
  assert got0 == pytest.approx(got, rel=1e-6)


# --------------------------------------------------------------------------------------------------
# Gradients.

def grad_logp(cfg, logp, old, adv, mask, **kw):
  def f(lp):
    total, denom, _ = policy_loss(lp, jnp.asarray(old, jnp.float32), jnp.asarray(adv, jnp.float32),
                                  jnp.asarray(mask), cfg, **kw)
    return total / denom
  return np.asarray(jax.grad(f)(jnp.asarray(logp, jnp.float32)))


def test_gradient_analytic_token_ratio_k3():
  """d loss / d logp_{i,t} = w_{i,t} * [ -A r 1(unclipped branch active, not dual-capped) + beta (1 - exp(ref - logp)) ]."""
  logp, old, adv, mask, ref, _ = random_batch(4)
  beta, c, lo, hi = 0.04, 3.0, 0.2, 0.28
  cfg = LossConfig(clip_high=hi, dual_clip_c=c, kl_coef=beta)
  got = grad_logp(cfg, logp, old, adv, mask, ref_logp_bt=jnp.asarray(ref, jnp.float32))
  want = np.zeros_like(logp)
  n_seq = (mask.sum(1) > 0).sum()
  for i in range(logp.shape[0]):
    for t in range(logp.shape[1]):
      if not mask[i, t]:
        continue
      r, a = math.exp(logp[i, t] - old[i, t]), adv[i, t]
      unclipped_active = -r * a >= -min(max(r, 1 - lo), 1 + hi) * a
      capped = a < 0 and -r * a > -c * a
      g = (-a * r if unclipped_active and not capped else 0.0) + beta * (1 - math.exp(ref[i, t] - logp[i, t]))
      want[i, t] = g / mask[i].sum() / n_seq
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_gspo_gradient_matches_sequence_objective():
  """GSPO-token with A_{i,t} = A_i equals GSPO's sequence objective: compare with central differences of it."""
  logp, old, adv, mask, _, _ = random_batch(5, spread=0.05)
  cfg = LossConfig(ratio="sequence", clip_low=0.01, clip_high=0.012)
  got = grad_logp(cfg, logp, old, adv, mask)
  h, want = 1e-6, np.zeros_like(logp)
  for i, t in zip(*np.nonzero(mask)):
    e = np.zeros_like(logp)
    e[i, t] = h
    want[i, t] = (np_loss(logp + e, old, adv, mask, ratio="sequence", lo=0.01, hi=0.012)
                  - np_loss(logp - e, old, adv, mask, ratio="sequence", lo=0.01, hi=0.012)) / (2 * h)
  np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-6)
  assert np.any(got == 0) and np.any(got[mask] != 0)    # some sequences clipped, some not


def test_on_policy_grpo_is_reinforce():
  """logp == old, beta = 0: grad = -(1/G) sum_i (1/|o_i|) sum_t A_i grad logp_{i,t}."""
  g = 4
  rng = np.random.default_rng(6)
  logp = rng.normal(-1, 0.3, size=(g, 5))
  mask = np.arange(5)[None, :] < np.array([[5], [2], [3], [1]])
  adv = np.repeat(rng.normal(size=(g, 1)), 5, axis=1)
  got = grad_logp(LossConfig(), logp, logp, adv, mask)
  want = -(1 / g) * adv / mask.sum(1, keepdims=True) * mask
  np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


# --------------------------------------------------------------------------------------------------
# Micro-batch accumulation == full batch.

@pytest.mark.parametrize("cfg", [
    LossConfig(kl_coef=0.04),
    LossConfig(aggregation="token_mean", clip_high=0.28, entropy_coef=0.01),
    LossConfig(aggregation="seq_mean_token_sum_norm", norm_len=6),
    LossConfig(ratio="sequence"),
], ids=["seq_mean_token_mean", "token_mean", "seq_mean_token_sum_norm", "gspo"])
def test_microbatch_accumulation(cfg):
  logp, old, adv, mask, ref, ent = (jnp.asarray(x) for x in random_batch(7))
  logp, old, adv, ref, ent = (x.astype(jnp.float32) for x in (logp, old, adv, ref, ent))

  def total(lp, sl):
    s, d, m = policy_loss(lp, old[sl], adv[sl], mask[sl], cfg, ref_logp_bt=ref[sl], entropy_bt=ent[sl])
    return s, (d, m)

  full_s, (full_d, _) = total(logp, slice(None))
  full_grad = jax.grad(lambda lp: total(lp, slice(None))[0] / full_d)(logp)
  sums, denoms, grads = [], [], []
  for k in range(0, 8, 2):
    sl = slice(k, k + 2)
    (s, (d, _)), gr = jax.value_and_grad(total, has_aux=True)(logp[sl], sl)
    sums.append(s)
    denoms.append(d)
    grads.append(gr)
  acc_d = sum(denoms)
  assert float(acc_d) == float(full_d)
  assert float(sum(sums) / acc_d) == pytest.approx(float(full_s / full_d), rel=1e-6, abs=1e-7)
  np.testing.assert_allclose(np.concatenate(grads) / float(acc_d), full_grad, rtol=1e-5, atol=1e-8)


# --------------------------------------------------------------------------------------------------
# Misc: jit, pads, config validation, NLL.

def test_jit_and_nan_safe_pads():
  logp, old, adv, mask, ref, _ = random_batch(8)
  logp = np.where(mask, logp, -np.inf)                 # pad log-probs may be -inf
  cfg = LossConfig(kl_coef=0.04)
  fn = jax.jit(lambda lp: mean_of(*policy_loss(lp, jnp.asarray(old, jnp.float32), jnp.asarray(adv, jnp.float32),
                                               jnp.asarray(mask), cfg, ref_logp_bt=jnp.asarray(ref, jnp.float32))[:2]))
  val, gr = jax.value_and_grad(fn)(jnp.asarray(logp, jnp.float32))
  assert np.isfinite(float(val)) and np.all(np.isfinite(np.asarray(gr)))
  assert np.all(np.asarray(gr)[~mask] == 0)


@pytest.mark.parametrize("kwargs,field", [
    (dict(clip_low=1.0), "loss.clip_low must be in \\[0,1\\)"),
    (dict(clip_high=-0.1), "loss.clip_high"),
    (dict(dual_clip_c=0.5), "loss.dual_clip_c"),
    (dict(ratio="seq"), "loss.ratio"),
    (dict(kl_estimator="k4"), "loss.kl_estimator"),
    (dict(kl_coef=-1.0), "loss.kl_coef"),
    (dict(aggregation="sum"), "loss.aggregation"),
    (dict(aggregation="seq_mean_token_sum_norm"), "loss.norm_len"),
    (dict(norm_len=0), "loss.norm_len"),
    (dict(entropy_coef=-1.0), "loss.entropy_coef"),
])
def test_config_validation(kwargs, field):
  with pytest.raises(ValueError, match=field):
    LossConfig(**kwargs)


def test_config_from_dict_and_missing_ref():
  assert LossConfig.from_dict({"clip_high": 0.28}).clip_high == 0.28
  with pytest.raises(ValueError, match="unknown loss config"):
    LossConfig.from_dict({"clip": 0.2})
  with pytest.raises(ValueError, match="entropy_bt"):
    jloss(LossConfig(entropy_coef=0.01), HAND_LOGP, HAND_OLD, HAND_ADV, HAND_MASK)
  with pytest.raises(ValueError, match="ref_logp_bt"):
    jloss(LossConfig(kl_coef=0.1), HAND_LOGP, HAND_OLD, HAND_ADV, HAND_MASK)
  with pytest.raises(ValueError, match="shape"):
    policy_loss(jnp.zeros((2, 3)), jnp.zeros((2, 4)), jnp.zeros((2, 3)), jnp.ones((2, 3)), LossConfig())


def test_nll_hand():
  # tokens with p = 0.5 and 0.25 (third masked): (ln 2 + ln 4) / 2 = 1.039721
  total, denom, metrics = nll_loss(jnp.array([[LN(0.5), LN(0.25), -jnp.inf]]), jnp.array([[1, 1, 0]]))
  assert float(total / denom) == pytest.approx(1.039721, abs=1e-6)
  assert float(metrics["nll"][1]) == 2.0
