"""Caches of decoded volumes (keys, disk, memory, administration), the worker pool that decodes
several series at once (:mod:`.pool`) and a case's modalities on one voxel grid (:mod:`.grid`)."""
