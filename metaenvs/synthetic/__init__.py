"""Synthetic families that need no download: regression functions and 2-D loss surfaces."""
