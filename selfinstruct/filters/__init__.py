"""Filters: small decisions (keep, or drop with a reason), counted by the pipeline."""
