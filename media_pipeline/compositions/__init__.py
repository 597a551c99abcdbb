"""Compositions: generated multi-segment videos (issue 17)."""
