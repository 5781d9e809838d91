"""RL-contamination detection by self-critique (RL-MIA, Tao et al. 2025, arXiv 2510.09259), with
the perplexity and Min-K% baselines, for any model `critjax.eval.models.load_model` loads.

Per item (spec: ../shared/specs/EVALUATION.md §8):
  1. decode the question greedily; at each generated position t record the top-K log-probs of the
     next-token distribution, H_t = -sum_v p_v log p_v over them (K = 50, as upstream);
  2. decode greedily a second prompt that shows the first response and asks for a different
     reasoning path (up to 2x the tokens), recording H';
  3. score = cos(pad H, pad H') * min(|H|, |H'|) / max(|H|, |H'|)
     (bench_metrics.self_critique_score; higher = more likely a member).
Baselines on the first (greedy) response: perplexity (lower = member) and Min-K% Prob, k = 20%
(higher = member). Each detector's AUC by bench_metrics.membership_auc (NaN scores dropped).

The per-step distributions come from one teacher-forced forward over prompt + greedy tokens
(temperature 1 logits): greedy decoding picks the argmax of exactly these logits, so the
recorded log-probs are those the sampler decoded from, without changing the sampler.

The second prompt (our wording; RL-MIA's is paraphrased in the spec): for a chat model, a user
turn with the question, the first response between `---` marks, and the request for another
solution. For a critjax toy run (no chat template, a tokenizer that knows only the task's text)
the closest the toy's language allows: the question, the first response, then the question again
(`Q: 12+34 = <first> Q: 12+34 =`): the model is shown its answer and asked again.

Dimension key: B rows, S sampler capacity, K top-k, V vocabulary.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from critjax.data.tokenizers import stop_ids
from critjax.eval import bench_metrics
from critjax.models import decoder
from critjax.sampling.sampler import Sampler, completions
from critjax.sampling.token_choice import SamplingConfig

TOP_K = 50           # RL-MIA generate_full_data.py
MIN_K = 0.2          # Min-K% Prob's k in RL-MIA

ALT_PROMPT = """{question}

A possible answer is given below. It may or may not be correct.
---
{first}
---
Write a response that follows a different reasoning path or gives another solution."""


@dataclasses.dataclass
class Decoded:
  ids: np.ndarray        # (T,) generated token ids (a stop token included when produced)
  logp: np.ndarray       # (T,) log p(ids[t] | prefix)
  topk_logp: np.ndarray  # (T, K) the K largest log-probs of the distribution ids[t] was drawn from
  text: str


@functools.partial(jax.jit, static_argnames=("cfg", "k"))
def _teacher_forced(params, tokens_bs, cfg, k: int):
  """-> (log p of each token given its prefix (B, S), top-k log-probs of that distribution (B, S, K));
  position 0 (no prefix) holds 0."""
  logits, _ = decoder.forward(params, tokens_bs, cfg)
  logp_all = jax.nn.log_softmax(logits[:, :-1].astype(jnp.float32), axis=-1)        # (B, S-1, V)
  chosen = jnp.take_along_axis(logp_all, tokens_bs[:, 1:, None], axis=-1)[..., 0]
  top, _ = jax.lax.top_k(logp_all, k)
  pad = lambda x: jnp.concatenate([jnp.zeros_like(x[:, :1]), x], axis=1)
  return pad(chosen), pad(top)


def greedy_decode(model, prompts: Sequence[list[int]], max_new_tokens: int, *, top_k: int = TOP_K,
                  batch_size: int = 16, bucket: int = 64) -> list[Decoded]:
  """Greedy completions of token-id prompts with each step's log-probs (see the module docstring)."""
  tok = model.tokenizer
  stops = tuple(stop_ids(tok))
  pad_id = tok.pad_id if tok.pad_id is not None else tok.eos_id
  k = min(top_k, model.cfg.vocab_size)
  out: list[Decoded] = []
  samplers: dict[int, Sampler] = {}
  for b0 in range(0, len(prompts), batch_size):
    batch = list(prompts[b0:b0 + batch_size])
    p = -(-max(len(x) for x in batch) // bucket) * bucket
    ids = np.full((batch_size, p), pad_id, np.int32)
    lens = np.ones((batch_size,), np.int32)
    for i in range(batch_size):
      row = batch[min(i, len(batch) - 1)]          # padding rows repeat the last prompt (dropped)
      ids[i, :len(row)], lens[i] = row, len(row)
    if p not in samplers:
      scfg = SamplingConfig(max_new_tokens=max_new_tokens, temperature=0.0, eos_id=tok.eos_id, pad_id=pad_id,
                            extra_stop_ids=tuple(s for s in stops if s != tok.eos_id))
      samplers[p] = Sampler(model.cfg, scfg, p + max_new_tokens)
    ro = samplers[p].generate(model.params, ids, lens, jax.random.PRNGKey(0))
    chosen, top = _teacher_forced(model.params, ro.tokens, model.cfg, k)
    chosen, top, segment = np.asarray(chosen), np.asarray(top), np.asarray(ro.segment)
    gen_ids = completions(ro, 0)
    for i in range(len(batch)):
      where = segment[i] == 0
      text = tok.decode([int(t) for t in gen_ids[i] if int(t) not in stops], skip_special_tokens=True)
      out.append(Decoded(gen_ids[i], chosen[i][where].astype(np.float64), top[i][where].astype(np.float64), text))
  return out


def encode(model, text: str) -> list[int]:
  """A prompt as the model's own runs encode it: its chat template's user turn, else plain text
  (BOS only for a pretrained model, critjax.eval.models.EvalModel.add_bos)."""
  if model.chat is not None:
    from critjax.data.chat import tokenize_chat
    return tokenize_chat(model.tokenizer, model.chat, [{"role": "user", "content": text}],
                         add_generation_prompt=True).ids.tolist()
  return model.tokenizer.encode(text, add_special_tokens=model.add_bos)


def alternative_prompt(model, question: str, first: str) -> str:
  if model.chat is None:
    return f"{question}{first} {question}"
  return ALT_PROMPT.format(question=question, first=first)


def detect(model, questions: Sequence[str], member: Sequence[bool], *, max_new_tokens: int,
           batch_size: int = 16, top_k: int = TOP_K) -> dict:
  """Scores and AUCs of the three detectors on `questions` (prompt texts) with membership labels.

  -> {"auc": {detector: AUC}, "scores": {detector: (N,) float64}, "first": [Decoded], "second": [Decoded]}"""
  member = np.asarray(member, bool)
  if len(questions) != len(member) or member.all() or not member.any():
    raise ValueError(f"need both members and non-members, one label per question: {len(questions)} questions, "
                     f"{int(member.sum())} of {len(member)} labelled member")
  first = greedy_decode(model, [encode(model, q) for q in questions], max_new_tokens, top_k=top_k,
                        batch_size=batch_size)
  second = greedy_decode(model, [encode(model, alternative_prompt(model, q, d.text)) for q, d in zip(questions, first)],
                         2 * max_new_tokens, top_k=top_k, batch_size=batch_size)
  h1 = [bench_metrics.topk_entropy(d.topk_logp) for d in first]
  h2 = [bench_metrics.topk_entropy(d.topk_logp) for d in second]
  scores = {
      "self_critique": np.array([bench_metrics.self_critique_score(a, b) for a, b in zip(h1, h2)]),
      "perplexity": np.array([bench_metrics.perplexity(d.logp) for d in first]),
      f"min_{int(100 * MIN_K)}%": np.array([bench_metrics.min_k_prob(d.logp, MIN_K) for d in first]),
  }
  direction = {"self_critique": 1, "perplexity": -1, f"min_{int(100 * MIN_K)}%": 1}
  auc = {n: bench_metrics.membership_auc(s, member, direction[n]) for n, s in scores.items()}
  return {"auc": auc, "scores": scores, "first": first, "second": second}
