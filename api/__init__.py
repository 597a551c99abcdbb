"""HTTP facade over the editorial pipeline: publish cuts, read shots, launch and follow Dagster runs."""
