"""Dagster assets, resources, checks and automation, assembled in `pipeline.definitions`."""
