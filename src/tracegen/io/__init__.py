"""On-disk formats: episodes (raw demonstrations), trace datasets (triplets), and the formats of other projects.

See docs/FORMATS.md for every layout with shapes, dtypes, units and conventions.
"""
