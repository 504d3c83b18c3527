"""``torchrun`` training: two CPU processes (gloo) on loopback, and the single-process helpers.

The multi-process tests launch ``torchrun --standalone`` (a free port, no fixed one) in a
subprocess with a timeout, so a deadlock fails the test with the ranks' output instead of
hanging CI.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from mriviewer.ml.distributed import DistContext, context_from_env  # noqa: E402

TIMEOUT_S = 300
multiprocess = pytest.mark.skipif(
    not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
    reason="torch.distributed with gloo is not available in this build")
TRAIN_ARGS = ["--model", "cnn3d", "--modalities", "FLAIR", "--set", "image_size=32", "--set", "depth=8",
              "--set", "batch_size=4", "--set", "pretrained=none", "--set", "augment={}", "--device", "cpu"]
RESULT_FILES = {"best.pt", "metrics.json", "config.json", "predictions.csv"}

# Runs the mriviewer command line under torchrun like ``-m mriviewer`` does, and records per rank
# what the training loop saw: the indices each DistributedSampler handed out, the batch totals of
# the "train" ProgressEvents (rank 0 only yields them), a digest of the model (parameters and
# BatchNorm statistics) each time predictions are gathered, whether the run destroyed its process
# group, and the DistContext helpers on a two-rank group. With STOP_IN_EPOCH, rank 0 (only) asks
# the trainer to stop during that epoch.
DRIVER = r'''
import hashlib
import json
import os
import sys


def main():
    import torch
    import torch.distributed as tdist
    from torch.utils.data import DistributedSampler

    from mriviewer import cli
    from mriviewer.ml import engine, fit
    from mriviewer.ml.distributed import context_from_env

    rec = {"sampled": [], "dataset_len": [], "train_totals": [], "models": [], "probs": []}
    orig_iter = DistributedSampler.__iter__

    def sampler_iter(self):
        idx = list(orig_iter(self))
        rec["sampled"].append(idx)
        rec["dataset_len"].append(len(self.dataset))
        return iter(idx)

    DistributedSampler.__iter__ = sampler_iter
    orig_run = engine.Trainer.run

    def run(self):
        inner = orig_run(self)
        while True:
            try:
                ev = next(inner)
            except StopIteration as done:
                return done.value
            if isinstance(ev, engine.ProgressEvent) and ev.stage == "train" and ev.step == 1:
                rec["train_totals"].append(ev.total)
                if str(ev.epoch) == os.environ.get("STOP_IN_EPOCH"):
                    self.stop()  # rank 0 only: the GUI's or a caller's stop, mid-epoch
            yield ev

    engine.Trainer.run = run
    orig_evaluate = fit.evaluate

    def evaluate(model, *args, **kwargs):
        out = orig_evaluate(model, *args, **kwargs)
        h = hashlib.sha1()
        for k, v in model.state_dict().items():
            h.update(k.encode())
            h.update(v.detach().cpu().contiguous().numpy().tobytes())
        rec["models"].append(h.hexdigest())
        rec["probs"].append(out[2].round(6).tolist())
        return out

    fit.evaluate = evaluate

    rc = cli.main(sys.argv[1:])
    rec["rc"] = rc
    rec["group_left_open"] = tdist.is_initialized()
    # The helpers on two ranks, in a group of their own (a file store: re-creating a group on
    # torchrun's store right after the run destroyed its own can meet the old group's keys).
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    tdist.init_process_group("gloo", init_method="file://" + os.path.join(os.environ["REC_DIR"], "pg"),
                             rank=rank, world_size=world)
    ctx = context_from_env(False)
    rec["ctx"] = [ctx.rank, ctx.local_rank, ctx.world_size, ctx.backend, ctx.owns_group]
    rec["gather"] = ctx.gather({"r": rank})
    rec["mean"] = list(ctx.mean([1.0, 4.0][rank], [1, 3][rank]))
    rec["mean_empty"] = list(ctx.mean(0.0, 0))
    rec["any"] = [ctx.any(rank == 1), ctx.any(False)]
    bn = torch.nn.BatchNorm1d(3)
    bn.running_mean.fill_(float(rank + 1))
    ctx.sync_buffers(bn)
    rec["synced_running_mean"] = bn.running_mean.tolist()
    ctx.barrier()
    ctx.close()  # not its group: left open
    rec["foreign_group_kept"] = tdist.is_initialized()
    tdist.destroy_process_group()
    with open(os.path.join(os.environ["REC_DIR"], f"rank{rank}.json"), "w") as fh:
        json.dump(rec, fh)
    return rc


if __name__ == "__main__":
    sys.exit(main())
'''


def _end_marked(marker: str) -> None:
    """End the processes this test started, by the marker in their environment: torchrun, its
    ranks and their decoding workers (spawn-ed; they outlive a rank that is killed)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return
    tag = f"MRIVIEWER_TEST_RUN={marker}".encode()
    for d in proc.iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            if tag in (d / "environ").read_bytes().split(b"\0"):
                os.kill(int(d.name), signal.SIGKILL)
        except OSError:
            pass


def _torchrun(tmp_path: Path, args: list[str], env_extra: dict | None = None) -> tuple[int, str, str]:
    """``torchrun --standalone --nproc_per_node=2 ARGS`` on CPU (loopback, a free port); returns
    ``(exit status, stdout, stderr)``. Fails the test, with the output, on timeout."""
    marker = uuid.uuid4().hex
    env = {**os.environ, "OMP_NUM_THREADS": "1", "QT_QPA_PLATFORM": "offscreen",
           "MRIVIEWER_CACHE_DIR": str(tmp_path / "cache" / "volumes"), "PYTHONUNBUFFERED": "1",
           "MRIVIEWER_TEST_RUN": marker, **(env_extra or {})}
    for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *args]
    out_path, err_path = tmp_path / "torchrun.out", tmp_path / "torchrun.err"
    # Files, not pipes: a leftover process holding a pipe open could block the reader.
    with open(out_path, "w") as out, open(err_path, "w") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                cwd=Path(__file__).resolve().parents[2], start_new_session=True)
        try:
            rc = proc.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            rc = None
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            _end_marked(marker)
    stdout, stderr = out_path.read_text(errors="replace"), err_path.read_text(errors="replace")
    if rc is None:
        pytest.fail(f"torchrun did not finish in {TIMEOUT_S} s (deadlock?)\nstdout:\n{stdout}\n"
                    f"stderr:\n{stderr[-20000:]}")
    return rc, stdout, stderr


def _check_result(run: tuple[int, str, str], out: Path) -> dict:
    """The common checks of a finished run; returns metrics.json."""
    rc, stdout, stderr = run
    assert rc == 0, f"rc {rc}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    lines = [ln for ln in stdout.splitlines() if ln.strip()]
    assert len(lines) == 1, stdout  # the JSON result, from rank 0 only
    result = json.loads(lines[0])
    assert result["checkpoint"] == str(out / "best.pt")
    assert "Distributed: rank 0 of 2 (gloo)" in stderr
    assert "rank 1 of 2" not in stderr  # other ranks print nothing
    assert stderr.count("Research use only") == 1
    top = {p.name for p in out.iterdir() if p.is_file()}
    assert top == RESULT_FILES
    assert not list(out.rglob(".*.tmp")) and not list(out.rglob("*.tmp"))
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("auc", "auc_ci", "accuracy", "n_cases"):
        assert key in metrics["test"]
    assert result["test_cases"] == metrics["test"]["n_cases"]
    return metrics


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory) -> Path:
    from tests.phantoms import make_lesion_phantoms

    return make_lesion_phantoms(tmp_path_factory.mktemp("dist") / "ph", n_cases=24, seed=0)


def test_single_process_context_helpers_are_identities(monkeypatch):
    for world in (None, "1"):
        if world is None:
            monkeypatch.delenv("WORLD_SIZE", raising=False)
        else:
            monkeypatch.setenv("WORLD_SIZE", world)
        ctx = context_from_env(use_cuda=False)
        assert ctx == DistContext() and not ctx.enabled and ctx.is_main
    obj = {"a": [1, 2]}
    assert ctx.gather(obj) == [obj] and ctx.gather(obj)[0] is obj
    assert ctx.mean(0.25, 8) == (0.25, 8) and ctx.mean(0.0, 0) == (0.0, 0)
    assert ctx.any(True) is True and ctx.any(False) is False and ctx.any(0) is False
    assert ctx.device(torch.device("cpu")) == torch.device("cpu")
    bn = torch.nn.BatchNorm1d(2)
    bn.running_mean.fill_(3.0)
    ctx.sync_buffers(bn)
    assert bn.running_mean.tolist() == [3.0, 3.0]
    ctx.barrier()
    ctx.close()
    assert not torch.distributed.is_initialized()


def _driver(tmp_path):
    """``(folder for the ranks' records, the driver script)`` of a recorded torchrun test."""
    rec_dir = tmp_path / "rec"
    rec_dir.mkdir()
    driver = tmp_path / "drive.py"
    driver.write_text(DRIVER)
    return rec_dir, driver


@multiprocess
def test_torchrun_holdout_splits_batches_and_keeps_ranks_identical(phantoms, tmp_path):
    out = tmp_path / "out"
    rec_dir, driver = _driver(tmp_path)
    # Two phases (train, then fine-tune with BatchNorm frozen): the model is wrapped in DDP twice.
    run = _torchrun(tmp_path, [str(driver), "train", "--data", str(phantoms), *TRAIN_ARGS, "--epochs", "2",
                                "--set", "finetune_epochs=1", "--out", str(out)], {"REC_DIR": str(rec_dir)})
    metrics = _check_result(run, out)
    assert [r["phase"] for r in metrics["epochs"]] == ["train", "train", "fine-tune"]
    r0, r1 = (json.loads((rec_dir / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["rc"] == 0 and r1["rc"] == 0
    assert not r0["group_left_open"] and not r1["group_left_open"]  # the run destroyed its group

    # DistributedSampler: each epoch, the two ranks share out the training samples.
    n_train = len(metrics["split"]["train"])
    assert r0["dataset_len"] == r1["dataset_len"] == [n_train] * 3
    per_rank = math.ceil(n_train / 2)
    for a, b in zip(r0["sampled"], r1["sampled"], strict=True):
        assert len(a) == len(b) == per_rank
        assert set(a) | set(b) == set(range(n_train))
        if n_train % 2 == 0:
            assert not set(a) & set(b)
    assert r0["sampled"][0] != r0["sampled"][1]  # reshuffled per epoch (set_epoch)
    # ProgressEvent totals: half the batches of a single-process epoch (16 train cases: 4 → 2).
    single = math.ceil(n_train / 4)
    assert r0["train_totals"] == [math.ceil(per_rank / 4)] * 3 and r1["train_totals"] == []
    assert r0["train_totals"][0] * 2 == single

    # Every rank predicts with the same model (weights and BatchNorm statistics) and gathers the
    # same predictions, so checkpoint and early-stopping decisions agree.
    assert len(r0["models"]) == 4  # three validations and the test
    assert r0["models"] == r1["models"] and r0["probs"] == r1["probs"]
    assert len(r0["probs"][-1]) == metrics["test"]["n_cases"]  # every test case, gathered

    # The DistContext helpers on two ranks.
    assert r0["ctx"] == [0, 0, 2, "gloo", False] and r1["ctx"] == [1, 1, 2, "gloo", False]
    for r in (r0, r1):
        assert r["gather"] == [{"r": 0}, {"r": 1}]
        assert r["mean"] == [pytest.approx((1.0 + 12.0) / 4), 4] and r["mean_empty"] == [0.0, 0]
        assert r["any"] == [True, False]
        assert r["synced_running_mean"] == [1.0, 1.0, 1.0]
        assert r["foreign_group_kept"]


@multiprocess
def test_torchrun_module_cross_validation(phantoms, tmp_path):
    out = tmp_path / "cv"
    # Early stopping may end the folds at different epochs: every rank must take the same decisions.
    run = _torchrun(tmp_path, ["-m", "mriviewer", "train", "--data", str(phantoms), *TRAIN_ARGS, "--epochs", "3",
                                "--set", "early_stopping=1", "--folds", "2", "--out", str(out)])
    metrics = _check_result(run, out)
    assert "Prepared 24 cases (" in run[2]
    assert [f["name"] for f in metrics["folds"]] == ["fold 1", "fold 2"]
    assert metrics["test"]["n_cases"] == 24  # pooled out-of-fold predictions
    for k in (1, 2):
        assert {p.name for p in (out / f"fold-{k}").iterdir()} == {"best.pt"}
    rows = (out / "predictions.csv").read_text().splitlines()
    assert len(rows) == 25


@multiprocess
def test_torchrun_stop_on_rank_0_ends_every_rank_after_the_epoch(phantoms, tmp_path):
    out = tmp_path / "stop"
    rec_dir, driver = _driver(tmp_path)
    run = _torchrun(tmp_path, [str(driver), "train", "--data", str(phantoms), *TRAIN_ARGS, "--epochs", "5",
                               "--out", str(out)], {"REC_DIR": str(rec_dir), "STOP_IN_EPOCH": "1"})
    metrics = _check_result(run, out)
    assert metrics["stopped"] is True and [r["epoch"] for r in metrics["epochs"]] == [1]
    r0, r1 = (json.loads((rec_dir / f"rank{r}.json").read_text()) for r in (0, 1))
    assert len(r0["sampled"]) == len(r1["sampled"]) == 1  # one epoch on both ranks
    assert r0["models"] == r1["models"] and len(r0["models"]) == 2  # validation and test
