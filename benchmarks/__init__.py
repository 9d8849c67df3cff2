"""Benchmarks of the project (not part of the package): ``python -m sentiment_lib bench`` runs ``bench.py``."""
