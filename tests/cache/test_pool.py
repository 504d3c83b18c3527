"""The decoding pool's shared memory: nothing left in /dev/shm when the main process is killed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPT = r"""
import os, signal, sys
import nibabel as nib, numpy as np
from mriviewer.cache.pool import _decode_shared, decode_pool
from mriviewer.data.cases import ModalitySource

if __name__ == "__main__":
    path = sys.argv[1]
    nib.save(nib.Nifti1Image(np.ones((8, 8, 8), np.float32), np.eye(4)), path)
    result = decode_pool(2).submit(_decode_shared, ModalitySource("FLAIR", path, "nifti")).result()
    print(result["shm"], flush=True)
    os.kill(os.getpid(), signal.SIGTERM)  # killed before it attaches to the block and unlinks it
"""


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="no /dev/shm on this system")
def test_a_killed_main_process_leaves_no_shared_memory_block(tmp_path):
    r = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "v.nii.gz")], capture_output=True,
                       text=True, timeout=120, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert r.returncode == -15, r.stderr
    block = Path("/dev/shm") / r.stdout.split()[0].lstrip("/")
    deadline = time.monotonic() + 30
    while block.exists() and time.monotonic() < deadline:
        time.sleep(0.1)  # the resource tracker unlinks it once every process holding it has ended
    assert not block.exists()
