"""``torchrun`` training: two CPU processes (gloo) on loopback, and the single-process helpers.

The multi-process tests launch ``torchrun --standalone`` (a free port, no fixed one) in a
subprocess with a timeout, so a deadlock fails the test with the ranks' output instead of
hanging CI.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from mriviewer.ml.distributed import DistContext, context_from_env  # noqa: E402

TIMEOUT_S = 300
TRAIN_ARGS = ["--model", "cnn3d", "--modalities", "FLAIR", "--set", "image_size=32", "--set", "depth=8",
              "--set", "batch_size=4", "--set", "pretrained=none", "--set", "augment={}", "--device", "cpu"]
RESULT_FILES = {"best.pt", "metrics.json", "config.json", "predictions.csv"}

# Runs the mriviewer command line under torchrun like ``-m mriviewer`` does, and records per rank
# what the training loop saw: the indices each DistributedSampler handed out, the batch totals of
# the "train" ProgressEvents (rank 0 only yields them), a digest of the model (parameters and
# BatchNorm statistics) each time predictions are gathered, whether the run destroyed its process
# group, and the DistContext helpers on a fresh two-rank group.
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
    from mriviewer.ml import engine
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
            yield ev

    engine.Trainer.run = run
    orig_predict = engine.Trainer._predict

    def predict(self, model, *args, **kwargs):
        out = orig_predict(self, model, *args, **kwargs)
        h = hashlib.sha1()
        for k, v in model.state_dict().items():
            h.update(k.encode())
            h.update(v.detach().cpu().contiguous().numpy().tobytes())
        rec["models"].append(h.hexdigest())
        rec["probs"].append(out[2].round(6).tolist())
        return out

    engine.Trainer._predict = predict

    rc = cli.main(sys.argv[1:])
    rec["rc"] = rc
    rec["group_left_open"] = tdist.is_initialized()
    # The helpers on a fresh group (the run destroyed its own).
    ctx = context_from_env(False)
    rank = ctx.rank
    rec["ctx"] = [ctx.rank, ctx.local_rank, ctx.world_size, ctx.backend]
    rec["gather"] = ctx.gather({"r": rank})
    rec["mean"] = list(ctx.mean([1.0, 4.0][rank], [1, 3][rank]))
    rec["mean_empty"] = list(ctx.mean(0.0, 0))
    rec["any"] = [ctx.any(rank == 1), ctx.any(False)]
    bn = torch.nn.BatchNorm1d(3)
    bn.running_mean.fill_(float(rank + 1))
    ctx.sync_buffers(bn)
    rec["synced_running_mean"] = bn.running_mean.tolist()
    ctx.barrier()
    ctx.close()
    rec["group_left_open_after_close"] = tdist.is_initialized()
    with open(os.path.join(os.environ["REC_DIR"], f"rank{rank}.json"), "w") as fh:
        json.dump(rec, fh)
    return rc


if __name__ == "__main__":
    sys.exit(main())
'''


def _torchrun(tmp_path: Path, args: list[str], env_extra: dict | None = None) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node=2 ARGS`` on CPU; fails the test on timeout."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "QT_QPA_PLATFORM": "offscreen",
           "MRIVIEWER_CACHE_DIR": str(tmp_path / "cache" / "volumes"), "PYTHONUNBUFFERED": "1",
           **(env_extra or {})}
    for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *args]
    try:
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S,
                              cwd=Path(__file__).resolve().parents[1])
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"torchrun did not finish in {TIMEOUT_S} s (deadlock?)\nstdout:\n{exc.stdout}\n"
                    f"stderr:\n{exc.stderr}")


def _check_result(proc: subprocess.CompletedProcess, out: Path) -> dict:
    """The common checks of a finished run; returns metrics.json."""
    assert proc.returncode == 0, f"rc {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stdout  # the JSON result, from rank 0 only
    result = json.loads(lines[0])
    assert result["checkpoint"] == str(out / "best.pt")
    assert "Distributed: rank 0 of 2 (gloo)" in proc.stderr
    assert "rank 1 of 2" not in proc.stderr  # other ranks print nothing
    assert proc.stderr.count("Research use only") == 1
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
    from mriviewer.demo import make_lesion_phantoms

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


def test_torchrun_holdout_splits_batches_and_keeps_ranks_identical(phantoms, tmp_path):
    out = tmp_path / "out"
    rec_dir = tmp_path / "rec"
    rec_dir.mkdir()
    driver = tmp_path / "drive.py"
    driver.write_text(DRIVER)
    # Two phases (train, then fine-tune with BatchNorm frozen): the model is wrapped in DDP twice.
    proc = _torchrun(tmp_path, [str(driver), "train", "--data", str(phantoms), *TRAIN_ARGS, "--epochs", "2",
                                "--set", "finetune_epochs=1", "--out", str(out)], {"REC_DIR": str(rec_dir)})
    metrics = _check_result(proc, out)
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
    import numpy as np

    test_probs = np.array(r0["probs"][-1])
    assert test_probs.shape == (metrics["test"]["n_cases"], 2)

    # The DistContext helpers on two ranks.
    assert r0["ctx"] == [0, 0, 2, "gloo"] and r1["ctx"] == [1, 1, 2, "gloo"]
    for r in (r0, r1):
        assert r["gather"] == [{"r": 0}, {"r": 1}]
        assert r["mean"] == [pytest.approx((1.0 + 12.0) / 4), 4] and r["mean_empty"] == [0.0, 0]
        assert r["any"] == [True, False]
        assert r["synced_running_mean"] == [1.0, 1.0, 1.0]
        assert not r["group_left_open_after_close"]


def test_torchrun_module_cross_validation(phantoms, tmp_path):
    out = tmp_path / "cv"
    # Early stopping may end the folds at different epochs: every rank must take the same decisions.
    proc = _torchrun(tmp_path, ["-m", "mriviewer", "train", "--data", str(phantoms), *TRAIN_ARGS, "--epochs", "3",
                                "--set", "early_stopping=1", "--folds", "2", "--out", str(out)])
    metrics = _check_result(proc, out)
    assert "Prepared 24 cases." in proc.stderr
    assert [f["name"] for f in metrics["folds"]] == ["fold 1", "fold 2"]
    assert metrics["test"]["n_cases"] == 24  # pooled out-of-fold predictions
    for k in (1, 2):
        assert {p.name for p in (out / f"fold-{k}").iterdir()} == {"best.pt"}
    rows = (out / "predictions.csv").read_text().splitlines()
    assert len(rows) == 25
