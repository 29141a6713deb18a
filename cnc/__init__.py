"""Compress and Compare: track, compare and choose among compressed variants of a model."""
from cnc.experiment.tracker import Tracker

__all__ = ["Tracker"]
__version__ = "0.2.0"
