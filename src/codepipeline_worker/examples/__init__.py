"""Example work functions."""
