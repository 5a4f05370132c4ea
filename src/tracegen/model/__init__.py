"""TraceGen: the trace-space world model (encoders, flow-matching decoder, checkpoints, prediction)."""

from tracegen.model.config import PRESETS, TraceGenConfig, preset
from tracegen.model.tracegen import TraceGen, TracePrediction

__all__ = ["PRESETS", "TraceGenConfig", "TraceGen", "TracePrediction", "preset"]
