"""synthdata: synthetic image data for rare classes, with evidence and provenance."""

__version__ = "0.1.0"
