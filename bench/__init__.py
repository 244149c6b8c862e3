"""Benchmarks: `make bench` (python -m bench [name ...]) prints figures, never asserts."""
