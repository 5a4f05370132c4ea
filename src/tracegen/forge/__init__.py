"""TraceForge: demonstration videos -> camera-motion-compensated, speed-retargeted 3D trace triplets."""
