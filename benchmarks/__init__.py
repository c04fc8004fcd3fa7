"""Benchmarks (installed as ``saliency_gym.benchmarks``): scripts that print tables, and the
policy-comparison suite behind ``saliency-gym bench``."""
