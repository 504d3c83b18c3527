"""Faults: ``mriviewer train`` killed (SIGKILL) or interrupted (SIGINT) at seeded random points,
and a full disk (a real one: a tiny tmpfs, when this machine lets the tests mount one) during
``train``, ``predict``, ``convert`` and ``report``.

What must hold: the out folder holds a loadable best checkpoint or none — never a partial file,
never a temporary file that a later run trips on; SIGINT ends with a message and status 130; a
full disk ends with one error line, status 2, and no partial output or temporary file.

The kill runs share one "fork server": a Python process that imports torch, MONAI and mriviewer
once and forks a child per run, which runs ``mriviewer.cli.main`` exactly as ``python -m
mriviewer`` does (imports take most of a CLI run here; forking keeps the points cheap). Its
``torch.save`` writes in three chunks 0.1 s apart, so that kills often land inside a
checkpoint write. One run is a plain ``python -m mriviewer train`` subprocess.
"""

from __future__ import annotations

import csv
import errno
import json
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mriviewer.cli import main
from mriviewer.core.errors import CheckpointError
from mriviewer.core.files import is_temp_name, remove_stale_temps

pytestmark = pytest.mark.skipif(os.name != "posix", reason="signals and tmpfs: POSIX only")

TRAIN = ["--model", "cnn3d", "--image-size", "16", "--depth", "4", "--device", "cpu", "--pretrained", "none",
         "--set", "num_threads=1"]
OUTPUTS = {"best.pt", "config.json", "metrics.json", "predictions.csv"}


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory) -> Path:
    """8 cases, 24×24 pixels, 8 slices."""
    from mriviewer.demo.dataset import make_demo_dataset

    return make_demo_dataset(tmp_path_factory.mktemp("tinydemo"), n_cases=8, seed=1, matrix=24, n_slices=8)


@pytest.fixture(scope="module")
def checkpoint(tiny_demo, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("trained")
    assert main(["train", "--data", str(tiny_demo), "--out", str(out), "--epochs", "1", *TRAIN]) == 0
    return out / "best.pt"


def temps(folder: Path) -> list[Path]:
    """Temporary files under ``folder`` (ours, or anything named ``*.tmp``)."""
    return [p for p in folder.rglob("*") if p.is_file() and (is_temp_name(p.name) or ".tmp" in p.name)]


def assert_complete(out: Path) -> None:
    """Every output present is whole: best.pt loads, JSON parses, the CSV has its header."""
    from mriviewer.ml.checkpoint import load_checkpoint

    if (out / "best.pt").exists():
        ckpt = load_checkpoint(out / "best.pt")
        assert ckpt["model_state"]
    for name in ("config.json", "metrics.json"):
        if (out / name).exists():
            assert isinstance(json.loads((out / name).read_text()), dict), name
    if (out / "predictions.csv").exists():
        assert next(csv.reader((out / "predictions.csv").open()))[0] == "case_id"
    visible = {p.name for p in out.iterdir() if not p.name.startswith(".")}
    assert visible <= OUTPUTS, visible


# ---------------------------------------------------------------------------- killed training
DRIVER = r'''
import io, json, os, signal, sys, time, traceback
import monai.transforms, torch, torchvision  # noqa: F401  once, before any fork; no torch op runs here
import mriviewer.ml.engine, mriviewer.ml.models, mriviewer.ml.predict  # noqa: F401
from mriviewer.cli import main

_save = torch.save


def slow_save(obj, f, *a, **k):
    buf = io.BytesIO()
    _save(obj, buf, *a, **k)
    data = buf.getvalue()
    step = len(data) // 3 + 1
    for i in range(0, len(data), step):
        f.write(data[i:i + step])
        f.flush()
        time.sleep(0.1)


torch.save = slow_save
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    job = json.loads(line)
    pid = os.fork()
    if pid == 0:
        fd = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            rc = main(job["argv"])
        except SystemExit as exc:
            rc = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            traceback.print_exc()
            rc = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(rc)
    print(json.dumps({"pid": pid}), flush=True)
    _, status = os.waitpid(pid, 0)
    print(json.dumps({"rc": os.waitstatus_to_exitcode(status)}), flush=True)
'''


class ForkServer:
    def __init__(self, folder: Path, env: dict) -> None:
        script = folder / "driver.py"
        script.write_text(DRIVER)
        self.proc = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env=env, cwd=folder)
        assert json.loads(self._line(300)) == {"ready": True}

    def _line(self, timeout: float) -> str:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        assert ready, "fork server did not answer"
        line = self.proc.stdout.readline()
        assert line, "fork server died"
        return line

    def run(self, argv: list[str], log: Path, sig: int | None = None, delay: float = 0.0) -> tuple[int, int, str, float]:
        """Run ``mriviewer argv`` in a forked child; with ``sig``, send it ``delay`` seconds after
        the child's first output line. Returns ``(pid, exit code, output, seconds after the
        first line)``."""
        self.proc.stdin.write(json.dumps({"argv": argv, "log": str(log)}) + "\n")
        self.proc.stdin.flush()
        pid = json.loads(self._line(60))["pid"]
        t_end = time.monotonic() + 120
        while not (log.exists() and log.stat().st_size) and time.monotonic() < t_end:
            if select.select([self.proc.stdout], [], [], 0.02)[0]:
                break  # ended before any output
        t0 = time.monotonic()
        if sig is not None and not select.select([self.proc.stdout], [], [], delay)[0]:
            os.kill(pid, sig)
        rc = json.loads(self._line(300))["rc"]
        return pid, rc, log.read_text(), time.monotonic() - t0

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(30)


@pytest.fixture(scope="module")
def fault_env(tmp_path_factory) -> dict:
    cache = tmp_path_factory.mktemp("faultcache")
    return {**os.environ, "MRIVIEWER_CACHE_DIR": str(cache / "volumes"), "MRIVIEWER_PROCESSES": "1",
            "OMP_NUM_THREADS": "1"}


def test_train_killed_at_random_points_leaves_a_loadable_checkpoint_or_none(tiny_demo, tmp_path, fault_env):
    server = ForkServer(tmp_path, fault_env)
    try:
        argv = ["train", "--data", str(tiny_demo), "--epochs", "3", *TRAIN]
        _, rc, log, span = server.run(argv + ["--out", str(tmp_path / "ref")], tmp_path / "ref.log")
        assert rc == 0, log
        assert_complete(tmp_path / "ref")
        rng = random.Random(20240607)
        killed = []
        for sig in (signal.SIGKILL, signal.SIGKILL, signal.SIGKILL, signal.SIGINT, signal.SIGINT, signal.SIGINT):
            delay = rng.uniform(0.0, span)
            out = tmp_path / f"{sig.name}-{delay:.2f}"
            pid, rc, log, _ = server.run(argv + ["--out", str(out)], tmp_path / f"{out.name}.log", sig, delay)
            assert_complete(out)
            if sig == signal.SIGINT:
                assert rc in (130, 0), log  # 0: it had finished
                assert "Traceback" not in log
                if rc == 130:
                    assert "Interrupted" in log.splitlines()[-1]
                assert temps(out) == []
            else:
                assert rc in (-signal.SIGKILL, 0), log
                # SIGKILL cannot clean up: only this process's hidden temporary file may remain, and
                # the next writer in the folder removes it.
                left = temps(out)
                assert all(f".{pid}." in p.name and p.name.startswith(".") for p in left), left
                killed.append((out, left))
        # A later run in a killed run's folder: no trip over the remains, none left after.
        out, _ = max(killed, key=lambda k: len(k[1]))
        _, rc, log, _ = server.run(argv + ["--out", str(out), "--overwrite"], tmp_path / "again.log")
        assert rc == 0, log
        assert temps(out) == [] and (out / "best.pt").is_file()
        assert_complete(out)
    finally:
        server.close()
    # The caches: any temporary file left by a killed writer is stale and goes with the next clean-up.
    cache_root = Path(fault_env["MRIVIEWER_CACHE_DIR"]).parent
    for folder in {p.parent for p in temps(cache_root)}:
        remove_stale_temps(folder)
    assert temps(cache_root) == []


def test_python_m_train_interrupted_exits_cleanly(tiny_demo, tmp_path, fault_env):
    """``python -m mriviewer train`` with Ctrl-C (SIGINT to its process group) at a seeded
    point of the training: a message, status 130, a loadable checkpoint or none, no temp files."""
    out, log = tmp_path / "run", tmp_path / "stderr.txt"
    delay = random.Random(7).uniform(0.0, 1.5)
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "mriviewer", "train", "--data", str(tiny_demo), "--out", str(out),
                                 "--epochs", "6", *TRAIN], stdout=subprocess.DEVNULL, stderr=err, env=fault_env,
                                start_new_session=True)
        t_end = time.monotonic() + 300
        while "Training cnn3d" not in log.read_text() and proc.poll() is None and time.monotonic() < t_end:
            time.sleep(0.05)
        time.sleep(delay)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
        rc = proc.wait(120)
    text = log.read_text()
    assert "Traceback" not in text
    if rc == 0:  # a fast machine finished the run before the signal came: its status, complete outputs
        assert "Test (" in text and "interrupted" not in text.lower(), text
    else:
        assert rc == 130, text
        assert "interrupted" in text.splitlines()[-1].lower(), text
    assert_complete(out)
    assert temps(out) == []


# ---------------------------------------------------------------------------- checkpoint writes
def test_checkpoint_write_failure_keeps_the_previous_one(tmp_path, monkeypatch):
    import torch

    from mriviewer.ml.checkpoint import load_checkpoint, new_checkpoint, save_checkpoint
    from mriviewer.ml.config import TrainConfig

    ckpt = new_checkpoint(torch.nn.Linear(4, 2), TrainConfig(model="cnn3d"), ["a", "b"], 2)
    path = save_checkpoint(tmp_path / "best.pt", ckpt)
    real = torch.save

    def half_then(exc):
        def save(obj, f, *a, **k):
            f.write(b"PK\x03\x04 half a zip")
            raise exc
        return save

    # torch's zip writer turns ENOSPC into RuntimeError; a plain write error; Ctrl-C mid-write.
    for exc, expected in ((RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos"), CheckpointError),
                          (OSError(errno.ENOSPC, "No space left on device"), CheckpointError),
                          (KeyboardInterrupt(), KeyboardInterrupt)):
        monkeypatch.setattr(torch, "save", half_then(exc))
        with pytest.raises(expected) as info:
            save_checkpoint(path, {**ckpt, "fold": "new"})
        if expected is CheckpointError:
            assert str(path) in str(info.value) and "\n" not in str(info.value)
        monkeypatch.setattr(torch, "save", real)
        assert load_checkpoint(path)["fold"] == "holdout"
        assert temps(tmp_path) == []


# ---------------------------------------------------------------------------- full disk
@pytest.fixture
def full_disk(tmp_path):
    """``fill(leave)``: a 2 MiB tmpfs, filled up to ``leave`` bytes free; skips where this
    machine does not let the tests mount one (not root, a container without CAP_SYS_ADMIN)."""
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    if not shutil.which("mount") or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")

    def fill(leave: int = 0) -> Path:
        with open(mnt / "filler", "wb") as fh:
            try:
                while (st := os.statvfs(mnt)).f_bavail * st.f_frsize > leave:
                    fh.write(b"\0" * min(4096, st.f_bavail * st.f_frsize - leave))
                    fh.flush()
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
        return mnt

    try:
        yield fill
    finally:
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def assert_one_error_line(capsys, rc: int, name: str) -> None:
    err = capsys.readouterr().err
    errors = [ln for ln in err.splitlines() if "error" in ln.lower()]
    assert rc == 2, err
    assert "Traceback" not in err and len(errors) == 1 and errors[0] == err.strip().splitlines()[-1], err
    assert errors[0].startswith("mriviewer: error: ") and name in errors[0], err


def test_full_disk_during_train(tiny_demo, full_disk, capsys):
    mnt = full_disk(64 << 10)  # config.json fits, the ~1 MB checkpoint does not
    out = mnt / "run"
    rc = main(["train", "--data", str(tiny_demo), "--out", str(out), "--epochs", "2", *TRAIN])
    assert_one_error_line(capsys, rc, "best.pt")
    assert temps(mnt) == [] and not (out / "best.pt").exists()
    assert_complete(out)


def test_full_disk_before_training(tiny_demo, full_disk, capsys):
    mnt = full_disk(0)
    rc = main(["train", "--data", str(tiny_demo), "--out", str(mnt / "run"), "--epochs", "1", *TRAIN])
    assert_one_error_line(capsys, rc, "config.json")
    assert temps(mnt) == []


def test_full_disk_during_predict(tiny_demo, checkpoint, full_disk, capsys):
    mnt = full_disk(0)
    rc = main(["predict", "--checkpoint", str(checkpoint), "--data", str(tiny_demo), "--out", str(mnt / "p.csv")])
    assert_one_error_line(capsys, rc, "p.csv")
    assert sorted(p.name for p in mnt.iterdir()) == ["filler"]


def test_full_disk_during_convert(tiny_demo, full_disk, capsys):
    mnt = full_disk(0)
    case = sorted(p for p in tiny_demo.rglob("FLAIR") if p.is_dir())[0]
    rc = main(["convert", str(case), "--out", str(mnt / "flair.nii.gz")])
    assert_one_error_line(capsys, rc, "flair.nii.gz")
    assert sorted(p.name for p in mnt.iterdir()) == ["filler"]


def test_full_disk_during_report(tiny_demo, checkpoint, full_disk, capsys):
    from mriviewer.data.discover import discover

    case_id = discover(tiny_demo).cases[0].case_id
    mnt = full_disk(0)
    rc = main(["report", "--checkpoint", str(checkpoint), "--data", str(tiny_demo), "--case", case_id,
               "--out", str(mnt / "r.pdf")])
    assert_one_error_line(capsys, rc, "r.pdf")
    assert sorted(p.name for p in mnt.iterdir()) == ["filler"]


def test_full_disk_for_the_volume_cache(tiny_demo, full_disk, caplog):
    """The cache on a full disk: the volume is still served, the failure is a log line, no file
    is left behind."""
    import logging

    from mriviewer.cache.disk import DiskCache
    from mriviewer.cache.memory import VolumeCache
    from mriviewer.data.discover import discover

    mnt = full_disk(0)
    src = discover(tiny_demo).cases[0].modalities["FLAIR"]
    caplog.set_level(logging.WARNING, logger="mriviewer.cache")
    vol = VolumeCache(disk=DiskCache(mnt / "cache")).get(src)
    assert vol.data.size and "cannot write" in caplog.text
    assert list((mnt / "cache").iterdir()) == []
