"""Evaluation helpers: gold-set loading/validation and pure metric functions."""
