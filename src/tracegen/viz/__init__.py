"""Pictures of traces: 2D overlays (CoTracker-style coloured tails)."""
