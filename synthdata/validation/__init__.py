"""Validation of generated images: feature spaces and realism metrics."""
