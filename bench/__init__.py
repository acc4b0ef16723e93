"""Benchmarks against peer libraries (not tests); run each as `python -m bench.<name>`."""
