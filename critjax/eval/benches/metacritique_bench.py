"""MetaCritique with the evaluated model as the judge (Sun et al., "The Critique of Critique", ACL
Findings 2024, arXiv 2401.04518; spec EVALUATION.md §3). Aggregation: critjax/eval/metacritique.py.

Metric. A hypothesis critique h is split into atomic information units (AIUs) a_1..a_m; the GPT-4
reference critique r has AIUs b_1..b_n (given). Per item P = (1/m) sum_i [a_i verified true given
the question, the model response and the reference answer], R = (1/n) sum_j [b_j entailed by h],
F1 = 2PR / (P + R) (0 when P or R is 0). Meta-P / Meta-R / Meta-F1 = the means over items of P, R
and F1 (Meta-F1 is the mean of per-item F1s, not the harmonic mean of Meta-P and Meta-R). Percent.

"metacritique" (the leaderboard protocol, benchmark_data.json + hypothesis_critique.json, matched by
position). Stage `metacritique_aius`: the judge splits h into claims, asked for a numbered list;
parse_aius keeps the lines that begin with a list marker (1. / 1) / (1) / "Claim 1:" / a bullet
- * or \u2022 before a space), markers and bold removed, exact repeats (case aside) dropped (a
looping small model would otherwise be scored on copies); unmarked lines (a preamble, a wrapped
continuation) are skipped. Zero claims: the item's precision is unparsed, P = 0 (so F1 = 0), counted as
`aius_unparsed_rate`. Stage `metacritique_precision`: one request per extracted AIU (id
"<item>/hyp/p/<k>"), the judge sees question, response, reference answer and the claim (not the
critique), reasons, and ends with `Verdict: true|false`. Stage `metacritique_recall`: one request
per reference AIU ("<item>/hyp/r/<k>"), the judge sees h and the claim and says whether h states or
implies it. parse_verdict: the last `Verdict: true|false`; else the last "claim is true|false"
(upstream's wording); else an answer that is only "true"/"false"; else None, which counts false
(metacritique.py treats a None label as not true, as upstream does) and is reported as
`precision_unparsed_rate` / `recall_unparsed_rate` (percent of verdicts; NaN when no claim was
extracted at all, so there was no precision verdict to parse).
Chance: a judge that answers "true" with p = 0.5 independently per AIU, its expected Meta-P/R/F1
computed EXACTLY (binomial sums, coin_meta_scores) from this run's extracted AIU counts m_i (m_i = 0
scores 0, as for the judge) and the reference counts n_i. Context, not chance: the spec's leaderboard
rows (GPT-4 judge scoring five critique models, `leaderboard/<model>/...`). The critique model that
wrote hypothesis_critique.json is not named upstream (its README calls it "a test hypothesis
critique"), so no GPT-4-judge figure for exactly these critiques is known: UNVERIFIED.

"metacritique_agreement" (the paper's meta-evaluation, annotation_data.json: 100 items x 3
critiques, slots human_critique / llm1_critique / llm2_critique; `--subset` picks slots). No
extraction: the judge labels the GIVEN AIUs of each critique for precision (stage
`metacritique_agreement_precision`, ids "<item>/<slot>/p/<k>") and each reference AIU against each
critique for recall (`metacritique_agreement_recall`, "<item>/<slot>/r/<k>"), with the same prompts
and parser. Reported against the human precision_labels / recall_labels: accuracy and macro-F1
(mean over the classes present in human or judge labels of F1_c = 2TP_c / (2TP_c + FP_c + FN_c),
sklearn's default set of labels) for precision, recall and both pooled; unparsed judge verdicts
count false (so they are wrong where the human said true). Human None labels would count false,
following metacritique.py (the shipped file has none). Beside them, Meta-P/R/F1 per slot and pooled
("judge/<slot>/meta_f1") from the judge's labels and from the human ones ("human/<slot>/...",
reproduce_annotation). Chance: accuracy = the majority-label rate of the human labels (`acc`) and
50 (`acc_coin`); macro-F1 of always answering the majority label, pi / (1 + pi) with pi the majority
rate (`macro_f1_majority`), and of a fair coin in the large-sample limit, mean_c pi_c / (pi_c + 1/2)
(`macro_f1_coin`); the judge Meta-P/R/F1 of the p = 0.5 coin, exact from the given AIU counts.
On all 100 items: human precision labels 74.5% true, recall labels 51.8% true (pooled 62.7%); the
coin's Meta-F1 is 42.3 (human_critique), 45.9 (llm1), 45.9 (llm2), against the human labels'
58.2 for each slot.

`--limit N` counts items (questions), so the agreement bench labels 3 critiques per item. Every
stage is one generate() call holding all AIUs of all items as separate requests.
"""
from __future__ import annotations

import math
import re
from typing import Optional, Sequence

import numpy as np

from critjax.data.paths import data_path
from critjax.eval import metacritique as mc
from critjax.eval.benches.base import BENCHES, Bench, Result, pick_subsets, check_limit
from critjax.eval.generation import Sampling

# The spec's leaderboard (GPT-4 judge, percent): critique model -> (Meta-P, Meta-R, Meta-F1).
LEADERBOARD = {"AUTO-J": (76.43, 70.65, 71.14), "GPT-3.5": (80.79, 64.27, 68.72),
               "UltraCM": (73.64, 66.77, 67.79), "Human (Shepherd)": (83.19, 60.65, 64.02),
               "SelFee": (69.56, 51.05, 54.22)}

EXTRACT_PROMPT = """Break the critique below into its atomic claims. An atomic claim is one short \
sentence that carries a single piece of information and can be checked on its own. Make every \
claim self-contained: where the critique says "the answer", write "the model's answer" or "the \
correct answer", whichever it means. Cover every checkable point of the critique and add nothing \
of your own.

Critique:
{critique}

Write the claims as a numbered list (1. ..., 2. ...), one claim per line, and nothing else."""

PRECISION_PROMPT = """You will check one claim taken from a critique of a model's answer. Use the \
material below. The question is fully reliable. The reference answer is usually right but can \
contain mistakes. The model's answer is the least reliable and may be flawed. The claim is true if \
it is a correct statement of fact, is stated in this material, or follows logically from it; \
otherwise it is false.

Question:
{question}

Model's answer:
{response}

Reference answer:
{reference}

Claim:
{claim}

Reason in a few sentences, then end with one line: "Verdict: true" or "Verdict: false"."""

RECALL_PROMPT = """You will check whether a critique contains a given claim. In the critique, "the \
answer" can mean the model's answer or the correct answer. The claim is true if the critique \
states it or it follows logically from what the critique says; otherwise it is false.

Critique:
{critique}

Claim:
{claim}

Reason in a few sentences, then end with one line: "Verdict: true" or "Verdict: false"."""

# a list marker: "1." "1)" "1:" (not the "1." of "1.5"), "(1)", a bullet followed by a space (not
# the "**" of a bold heading), or "Claim 1:"
_MARKER = re.compile(r"^\s*(?:\d+\s*[.):](?!\d)|\(\d+\)|[-*\u2022\u2013](?=\s)|claim\s*\d+\s*[.:)])\s*(.*)$",
                     re.IGNORECASE)
_VERDICT = re.compile(r"verdict\s*[:：]?\s*[*_`\"']*\s*(true|false)\b", re.IGNORECASE)
_CLAIM_IS = re.compile(r"\bclaim is (true|false)\b", re.IGNORECASE)


def parse_aius(text: str) -> list[str]:
  """The claims of a numbered / bulleted list, one per marked line, in order; [] when none."""
  out, seen = [], set()
  for line in text.splitlines():
    m = _MARKER.match(line)
    if not m:
      continue                       # a preamble, a note or a wrapped line: not a claim of its own
    claim = " ".join(m.group(1).replace("**", "").split())
    key = claim.lower()
    if re.search(r"\w", claim) and key not in seen:
      seen.add(key)
      out.append(claim)
  return out


def parse_verdict(text: str) -> Optional[bool]:
  """True / False from the last `Verdict: true|false`, else the last "claim is true|false", else an
  answer that is only the word; None when none of these is there."""
  found = _VERDICT.findall(text) or _CLAIM_IS.findall(text)
  if found:
    return found[-1].lower() == "true"
  bare = re.sub(r"[^a-z]", "", text.lower())
  return {"true": True, "false": False}.get(bare)


def _f1_expectation(m: int, n: int, p: float) -> float:
  """E[F1(A/m, B/n)] for independent A ~ Bin(m, p), B ~ Bin(n, p); m = 0 (unparsed) gives 0."""
  if m == 0:
    return 0.0
  pa = [math.comb(m, a) * p ** a * (1 - p) ** (m - a) for a in range(m + 1)]
  pb = [math.comb(n, b) * p ** b * (1 - p) ** (n - b) for b in range(n + 1)]
  return float(sum(pa[a] * pb[b] * mc.critique_f1(a / m, b / n) for a in range(1, m + 1) for b in range(1, n + 1)))


def coin_meta_scores(m_counts: Sequence[int], n_counts: Sequence[int], p: float = 0.5) -> dict[str, float]:
  """Expected Meta-P / Meta-R / Meta-F1 (fractions) of a judge that says "true" with probability p
  per AIU, over N items with m_i hypothesis AIUs (0: precision unparsed, P = F1 = 0) and n_i >= 1
  reference AIUs; exact, by summing over the binomial outcomes."""
  if len(m_counts) != len(n_counts) or not len(m_counts):
    raise ValueError(f"need equal, non-empty AIU counts; got {len(m_counts)} and {len(n_counts)}")
  if min(n_counts) < 1:
    raise ValueError("every item needs at least one reference AIU")
  return {"meta_p": float(np.mean([p if m else 0.0 for m in m_counts])), "meta_r": float(p),
          "meta_f1": float(np.mean([_f1_expectation(m, n, p) for m, n in zip(m_counts, n_counts)]))}


def label_agreement(human: Sequence[Optional[bool]], judge: Sequence[Optional[bool]]) -> dict[str, float]:
  """Accuracy and macro-F1 (fractions) of judge labels against human labels, both (L,); None counts
  false on either side. Macro-F1 averages F1_c = 2TP / (2TP + FP + FN) over the classes that occur
  in either list. Also the human majority-label rate and the two chance macro-F1s (module doc)."""
  if len(human) != len(judge) or not len(human):
    raise ValueError(f"need equal, non-empty label lists; got {len(human)} and {len(judge)}")
  h = np.array([bool(x) for x in human])
  j = np.array([bool(x) for x in judge])
  f1s = []
  for c in (True, False):
    if (h == c).any() or (j == c).any():
      tp, fp, fn = np.sum((j == c) & (h == c)), np.sum((j == c) & (h != c)), np.sum((j != c) & (h == c))
      f1s.append(2 * tp / (2 * tp + fp + fn))
  rate = h.mean()
  major = max(rate, 1 - rate)
  return {"acc": float((h == j).mean()), "macro_f1": float(np.mean(f1s)), "majority_rate": float(major),
          "macro_f1_majority": float(major / (1 + major)),
          "macro_f1_coin": float((rate / (rate + 0.5) + (1 - rate) / (1.5 - rate)) / 2)}


def _verdicts(out: dict, ids: Sequence[str]) -> list[Optional[bool]]:
  return [parse_verdict(out[i][0]) for i in ids]


def _msg(text: str) -> list[dict]:
  return [{"role": "user", "content": text}]


def _pct(d: dict, prefix: str = "") -> dict[str, float]:
  return {f"{prefix}{k}": 100 * float(v) for k, v in d.items() if k != "n"}


def _check_aius(path, records, field):
  for i, rec in enumerate(records):
    a = mc._get(rec, field)
    if not isinstance(a, list) or not all(isinstance(x, str) for x in a):
      raise ValueError(f"{path}: record {i}: field {field!r} must be a list of strings")
    if field == "gpt4_critique.aius" and not a:
      raise ValueError(f"{path}: record {i}: field {field!r} is empty (recall needs reference AIUs)")


@BENCHES.register("metacritique")
class MetaCritique(Bench):
  name = "metacritique"
  description = "MetaCritique leaderboard protocol, the model as judge: AIU extraction, precision, recall"

  def load(self, limit, subset):
    check_limit(limit)
    if subset not in (None, "all"):
      raise ValueError(f"--subset={subset!r}: metacritique has no subsets")
    bpath = data_path("metacritique", "benchmark_data.json")
    hpath = data_path("metacritique", "hypothesis_critique.json")
    bench, hyp = mc.load_metacritique(bpath), mc.load_metacritique(hpath)
    if len(bench) != len(hyp):
      raise ValueError(f"{hpath}: {len(hyp)} critiques for the {len(bench)} items of {bpath}")
    _check_aius(bpath, bench, "gpt4_critique.aius")
    for i, h in enumerate(hyp):
      if not isinstance(h["output"], str):
        raise ValueError(f"{hpath}: record {i}: field 'output' must be a string")
    items = [{"id": str(i), "question": b["question"], "response": b["response"], "reference": b["gpt4_answer"],
              "reference_aius": list(b["gpt4_critique"]["aius"]), "critique": h["output"]}
             for i, (b, h) in enumerate(zip(bench, hyp))]
    return self.take(items, limit, "metacritique items")

  def run(self, gen, items, opts) -> Result:
    s = Sampling(max_new_tokens=opts.get("max_new_tokens", 512))
    ext = gen.generate("metacritique_aius", [(it["id"], _msg(EXTRACT_PROMPT.format(critique=it["critique"])))
                                             for it in items], s)
    aius = [parse_aius(ext[it["id"]][0]) for it in items]
    p_req = {f"{it['id']}/hyp/p/{k}": _msg(PRECISION_PROMPT.format(
        question=it["question"], response=it["response"], reference=it["reference"], claim=a))
        for it, al in zip(items, aius) for k, a in enumerate(al)}
    r_req = {f"{it['id']}/hyp/r/{k}": _msg(RECALL_PROMPT.format(critique=it["critique"], claim=b))
             for it in items for k, b in enumerate(it["reference_aius"])}
    p_out = gen.generate("metacritique_precision", list(p_req.items()), s)
    r_out = gen.generate("metacritique_recall", list(r_req.items()), s)
    rows, p_labels, r_labels = [], [], []
    for it, al in zip(items, aius):
      pids = [f"{it['id']}/hyp/p/{k}" for k in range(len(al))]
      rids = [f"{it['id']}/hyp/r/{k}" for k in range(len(it["reference_aius"]))]
      pv, rv = _verdicts(p_out, pids), _verdicts(r_out, rids)
      p_labels.append(pv if al else [None])      # no claims: precision unparsed, scored 0
      r_labels.append(rv)
      rows.append({"id": it["id"], "aius": al, "aius_output": ext[it["id"]][0], "precision_labels": pv,
                   "recall_labels": rv, "precision_outputs": [p_out[i][0] for i in pids],
                   "recall_outputs": [r_out[i][0] for i in rids]})
    m = mc.meta_scores(p_labels, r_labels)
    for row, pl, rl in zip(rows, p_labels, r_labels):
      row["p"], row["r"] = mc.aiu_precision(pl), mc.aiu_recall(rl)
      row["f1"] = mc.critique_f1(row["p"], row["r"])
    pv_all = [v for r in rows for v in r["precision_labels"]]
    rv_all = [v for r in rows for v in r["recall_labels"]]
    metrics = _pct(m)
    metrics.update({
        "aius_unparsed_rate": 100 * float(np.mean([not a for a in aius])),
        "aius_per_item": float(np.mean([len(a) for a in aius])),
        "precision_unparsed_rate": 100 * float(np.mean([v is None for v in pv_all])) if pv_all else math.nan,
        "recall_unparsed_rate": 100 * float(np.mean([v is None for v in rv_all]))})
    chance = _pct(coin_meta_scores([len(a) for a in aius], [len(it["reference_aius"]) for it in items]))
    for model, vals in LEADERBOARD.items():
      chance.update({f"leaderboard/{model}/{k}": v for k, v in zip(("meta_p", "meta_r", "meta_f1"), vals)})
    return Result(metrics=metrics, chance=chance, items=rows)


@BENCHES.register("metacritique_agreement")
class MetaCritiqueAgreement(Bench):
  name = "metacritique_agreement"
  description = "MetaCritique meta-evaluation: the model's AIU labels against the human ones"

  def load(self, limit, subset):
    check_limit(limit)
    self.slots = pick_subsets(subset, mc.CRITIQUE_SLOTS, "critique slot")
    path = data_path("metacritique", "annotation_data.json")
    recs = mc.load_metacritique(path)
    _check_aius(path, recs, "gpt4_critique.aius")
    for slot in self.slots:
      _check_aius(path, recs, f"{slot}.aius")
    items = [dict(rec, id=str(i)) for i, rec in enumerate(recs)]
    return self.take(items, limit, "metacritique annotation items")

  def run(self, gen, items, opts) -> Result:
    s = Sampling(max_new_tokens=opts.get("max_new_tokens", 512))
    slots = getattr(self, "slots", mc.CRITIQUE_SLOTS)
    p_req, r_req = {}, {}
    for it in items:
      for slot in slots:
        c = it[slot]
        for k, a in enumerate(c["aius"]):
          p_req[f"{it['id']}/{slot}/p/{k}"] = _msg(PRECISION_PROMPT.format(
              question=it["question"], response=it["response"], reference=it["gpt4_answer"], claim=a))
        for k, b in enumerate(it["gpt4_critique"]["aius"]):
          r_req[f"{it['id']}/{slot}/r/{k}"] = _msg(RECALL_PROMPT.format(critique=c["critique"], claim=b))
    p_out = gen.generate("metacritique_agreement_precision", list(p_req.items()), s)
    r_out = gen.generate("metacritique_agreement_recall", list(r_req.items()), s)
    rows, judged = [], []
    for it in items:
      rec = dict(it)
      for slot in slots:
        c = it[slot]
        pv = _verdicts(p_out, [f"{it['id']}/{slot}/p/{k}" for k in range(len(c["aius"]))])
        rv = _verdicts(r_out, [f"{it['id']}/{slot}/r/{k}" for k in range(len(it["gpt4_critique"]["aius"]))])
        rec[slot] = dict(c, precision_labels=pv, recall_labels=rv)
        rows.append({"id": f"{it['id']}/{slot}", "model": c.get("model", "human"),
                     "human_precision": list(c["precision_labels"]), "judge_precision": pv,
                     "human_recall": list(c["recall_labels"]), "judge_recall": rv,
                     "precision_outputs": [p_out[f"{it['id']}/{slot}/p/{k}"][0] for k in range(len(pv))],
                     "recall_outputs": [r_out[f"{it['id']}/{slot}/r/{k}"][0] for k in range(len(rv))]})
      judged.append(rec)
    hp = [v for r in rows for v in r["human_precision"]]
    jp = [v for r in rows for v in r["judge_precision"]]
    hr = [v for r in rows for v in r["human_recall"]]
    jr = [v for r in rows for v in r["judge_recall"]]
    metrics, chance = {}, {}
    for tag, h, j in (("precision", hp, jp), ("recall", hr, jr), ("all", hp + hr, jp + jr)):
      a = label_agreement(h, j)
      metrics.update({f"{tag}/acc": 100 * a["acc"], f"{tag}/macro_f1": 100 * a["macro_f1"],
                      f"{tag}/unparsed_rate": 100 * float(np.mean([v is None for v in j]))})
      chance.update({f"{tag}/acc": 100 * a["majority_rate"], f"{tag}/acc_coin": 50.0,
                     f"{tag}/macro_f1_majority": 100 * a["macro_f1_majority"],
                     f"{tag}/macro_f1_coin": 100 * a["macro_f1_coin"]})
    # (judge-labelled critiques, human-labelled critiques, reference AIU counts) per slot, and pooled
    n_ref = [len(it["gpt4_critique"]["aius"]) for it in items]
    groups = {slot: ([r[slot] for r in judged], [it[slot] for it in items], n_ref) for slot in slots}
    groups["all"] = ([r[s] for r in judged for s in slots], [it[s] for it in items for s in slots],
                     [n for n in n_ref for _ in slots])
    human = mc.reproduce_annotation(items)
    for g, (jc, hc, nr) in groups.items():
      labels = lambda cs: ([c["precision_labels"] for c in cs], [c["recall_labels"] for c in cs])
      metrics.update(_pct(mc.meta_scores(*labels(jc)), f"judge/{g}/"))
      metrics.update(_pct(human[g] if g in human else mc.meta_scores(*labels(hc)), f"human/{g}/"))
      chance.update(_pct(coin_meta_scores([len(c["aius"]) for c in hc], nr), f"judge/{g}/"))
    return Result(metrics=metrics, chance=chance, items=rows)
