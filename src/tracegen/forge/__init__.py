"""TraceForge: demonstration videos -> camera-motion-compensated, speed-retargeted 3D trace triplets.

Entry points: :func:`tracegen.forge.sources.discover` (what is under a path), :class:`tracegen.forge.pipeline.Pipeline`
(the stages of one configuration), :func:`tracegen.forge.runners.run` (many episodes, locally or on Ray, resumable),
:func:`tracegen.forge.evaluate.evaluate` (against simulator ground truth), and the ``tracegen forge`` /
``tracegen forge-eval`` commands (:mod:`tracegen.forge.cli`). docs/FORGE.md describes the design; the measured
figures are in docs/forge/NUMBERS.md.
"""
