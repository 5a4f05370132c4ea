"""tracegen: TraceGen world modelling in 3D trace space, and the TraceForge data engine.

Data flows sim -> forge -> traces/data -> model -> act -> bench; ``geometry`` and ``traces`` are the shared ground.
"""

__version__ = "0.1.0"
