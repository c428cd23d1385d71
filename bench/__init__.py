"""Benchmarks of the deployed real-time stack (see each module)."""
