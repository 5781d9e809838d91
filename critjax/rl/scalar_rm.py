"""Scalar heads on a decoder, as a reward model reads them: batches whose score is taken at each
row's last token, and the scores of (prompt, completion) texts. Shared by the meta RM
(recipes/grm_meta.py), the Bradley-Terry reward model (recipes/reward_model.py) and the GRPO
baseline rewarded by it (recipes/judged.py: grpo_rm).

Dimension key: B rows, T the padded length (the recipe's capacity)."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from critjax.models import decoder
from critjax.rl import episodes


def scalar_batch(tokenizer, prompts: Sequence[str], texts: Sequence[str], max_len: int, pad_id: int,
                 labels: Optional[np.ndarray] = None) -> dict:
  """tokens (B, T) of prompt + text + EOS, right-padded; score_pos (B,) int32 the EOS's index (where
  the head is read); label (B,) when given."""
  b = episodes.sft_batch(tokenizer, prompts, texts, max_len, pad_id=pad_id)
  pos = (b["mask"].shape[1] - 1 - np.argmax(b["mask"][:, ::-1] > 0, axis=1)).astype(np.int32)
  out = {"tokens": b["tokens"], "score_pos": pos}
  if labels is not None:
    out["label"] = labels
  return out


def score_texts(params, model_cfg, tokenizer, prompts, texts, max_len: int, pad_id: int,
                chunk: int = 256) -> np.ndarray:
  """(B,) float64: the scalar head at the EOS after each prompt + text (decoder.scalar_scores), in
  chunks of `chunk` rows padded to one compiled shape."""
  out = []
  for i in range(0, len(prompts), chunk):
    b = scalar_batch(tokenizer, prompts[i:i + chunk], texts[i:i + chunk], max_len, pad_id)
    pad = chunk - len(b["tokens"])
    tok = np.pad(b["tokens"], ((0, pad), (0, 0)), constant_values=pad_id)
    length = np.pad(b["score_pos"] + 1, (0, pad))
    out.append(np.asarray(decoder.scalar_scores(params, tok, length, cfg=model_cfg))[:len(b["tokens"])])
  return np.concatenate(out).astype(np.float64) if out else np.zeros(0)
