"""Core: volumes and their geometry, plane extraction, colouring, resampling, atomic file writes
and the error types. Depends on nothing else in mriviewer."""
