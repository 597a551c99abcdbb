"""What the product areas share in Dagster: resources, the run reaper, health checks, job kinds."""
