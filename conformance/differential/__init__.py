"""Differential mode: a target and the reference mock, the same sequences, every divergence."""
