"""Evaluation: self-correction metrics (SCoRe's Acc@t / Δ table), compute-matched voting, benchmark scorers."""
