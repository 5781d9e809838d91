"""Load time and peak host memory for importing a ~1B-parameter Hugging Face checkpoint.

Writes a random Llama-3.2-1B-shaped model (1.24B parameters, bfloat16, tied embeddings) with
transformers' `save_pretrained` in 1 GB shards, then imports it with `critjax.models.hf_io.import_hf`
in a fresh process per variant and reports wall time and `ru_maxrss` (peak resident memory).
On a CPU the "device" is host memory, so the imported parameters themselves count in RSS;
the figure that shows streaming is the overhead: peak - baseline - parameter bytes.
The `naive` variant reads every shard whole (`safetensors.numpy.load_file`) before placing,
as a loader without streaming would.

  python experiments/bench_checkpoint_load.py --dir /tmp/llama1b     # ~2.5 GB disk, ~8 GB RAM peak

Measured on the 2-core, 24 GB CPU machine (shared with other jobs; times vary ~2x between runs),
1.236B parameters, checkpoint 2.30 GiB bf16 in 3 shards, largest tensor (embed) 525 MB bf16:
  stream -> bfloat16 params:  8.3 s, peak RSS 3,125 MB = 159 baseline + 2,357 params + 608 overhead
  stream -> float32 params:  14.4 s, peak RSS 5,574 MB = 160 baseline + 4,714 params + 700 overhead
  naive (whole shards first): 15.9 s, peak RSS 7,461 MB = 160 baseline + 4,714 params + 2,588 overhead
Writing the checkpoint (torch init + save_pretrained) took 40 s.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

LLAMA_1B = dict(vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                num_attention_heads=32, num_key_value_heads=8, head_dim=64, tie_word_embeddings=True,
                rope_theta=500000.0, rms_norm_eps=1e-5, max_position_embeddings=131072,
                rope_scaling=dict(rope_type="llama3", factor=32.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                  original_max_position_embeddings=8192))


def _maxrss_mb() -> float:
  """Peak resident memory of this process image. VmHWM, not ru_maxrss: ru_maxrss survives fork+exec,
  so a child would inherit its parent's peak."""
  for line in Path("/proc/self/status").read_text().splitlines():
    if line.startswith("VmHWM:"):
      return int(line.split()[1]) / 1024
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def write(path: Path) -> str:
  import torch
  import transformers
  if (path / "config.json").exists():
    return f"reusing {path}"
  t0 = time.time()
  torch.manual_seed(0)
  torch.set_default_dtype(torch.bfloat16)
  model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**LLAMA_1B))
  n = sum(p.numel() for p in model.parameters())
  model.save_pretrained(path, max_shard_size="1GB")
  size = sum(f.stat().st_size for f in path.glob("*.safetensors"))
  return (f"wrote {path}: {n / 1e9:.3f}B parameters, {size / 2**30:.2f} GiB in "
          f"{len(list(path.glob('*.safetensors')))} shards, {time.time() - t0:.1f}s")


def load(path: Path, variant: str, param_dtype: str) -> dict:
  import jax
  import numpy as np
  from critjax.models import hf_io
  jax.device_put(np.zeros(1)).block_until_ready()   # backend up before the baseline
  base = _maxrss_mb()
  t0 = time.time()
  if variant == "stream":
    params, cfg = hf_io.import_hf(path, param_dtype=param_dtype)
  else:  # everything on the host first, then convert and place
    from safetensors.numpy import load_file
    from critjax.models import families
    cfg, fam = families.config_from_hf(hf_io.read_hf_config(path), param_dtype=param_dtype)
    host = {}
    for f in sorted(path.glob("*.safetensors")):
      host.update(load_file(str(f)))
    params = {}
    for spec in families.tensor_specs(cfg, fam):
      x = families.to_critjax(host[spec.hf_name], spec).astype(jax.numpy.dtype(param_dtype))
      families.set_path(params, spec.path, jax.device_put(x))
  jax.block_until_ready(params)
  secs = time.time() - t0
  nbytes = sum(x.nbytes for x in jax.tree.leaves(params))
  return dict(variant=variant, param_dtype=param_dtype, seconds=round(secs, 2),
              params=sum(x.size for x in jax.tree.leaves(params)),
              param_mb=round(nbytes / 2**20), baseline_rss_mb=round(base), peak_rss_mb=round(_maxrss_mb()),
              overhead_mb=round(_maxrss_mb() - base - nbytes / 2**20))


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--dir", default="/tmp/critjax_llama1b")
  ap.add_argument("--child", nargs=2, metavar=("VARIANT", "DTYPE"), help=argparse.SUPPRESS)
  args = ap.parse_args()
  path = Path(args.dir)
  if args.child:
    print(json.dumps(write(path) if args.child[0] == "write" else load(path, *args.child)))
    return
  # Each step in its own process, so that one step's memory does not show in the next one's peak.
  print(subprocess.run([sys.executable, __file__, "--dir", str(path), "--child", "write", "-"],
                       capture_output=True, text=True, check=True).stdout.strip())
  largest = 128256 * 2048
  print(f"largest tensor: embed {largest / 1e6:.0f}M elements = {largest * 4 / 2**20:.0f} MB float32")
  for variant, dtype in (("stream", "bfloat16"), ("stream", "float32"), ("naive", "float32")):
    out = subprocess.run([sys.executable, __file__, "--dir", str(path), "--child", variant, dtype],
                         capture_output=True, text=True, check=True).stdout
    print(out.strip().splitlines()[-1])


if __name__ == "__main__":
  main()
