"""Tasks: dataset loaders (GSM8K, MATH500, HumanEval, generic JSON/JSONL, TFDS) and data paths."""
