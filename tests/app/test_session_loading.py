"""Quick selections and the prefetch, without Qt: a new selection cancels the loads before it
(a queued one never starts, a running one stops after the file it is decoding), only the
latest load waiting is kept, the case after the shown one (in the browser's order, or before
it going backwards) is decoded into the cache and nothing else, moving elsewhere cancels that
and moving to it waits for it; a checkpoint's split roles are worked out in its loading job.

Decoding runs in this process here (``MRIVIEWER_PROCESSES=1``, one file per step) and every
decode is counted by the case folder it reads."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from mriviewer.app.work import DecodeLane, Job, neighbour
from mriviewer.data.cases import ModalitySource
from tests.app.test_session import FakePredictor, Held, _dataset, _record, _session


@pytest.fixture
def decoded(monkeypatch) -> list[str]:
    """The case folder of every file decoded from now on (in this process)."""
    monkeypatch.setenv("MRIVIEWER_PROCESSES", "1")
    seen: list[str] = []
    real = ModalitySource.load

    def load(self):
        seen.append(Path(self.path).parent.name)
        return real(self)

    monkeypatch.setattr(ModalitySource, "load", load)
    return seen


def _drain(held: Held) -> None:
    while held.jobs:
        held.run(0)


def test_ten_selections_in_a_row_decode_only_the_last_and_the_case_after_it(tmp_path, decoded):
    held = Held()
    model, state, session = _session(_dataset(tmp_path, n=12), run=held, prefetch=True)
    seen = _record(session)
    for i in range(1, 11):  # ten quick presses of N
        model.select_case(f"c{i}")
    # c0's load (opening) and c1's started, both cancelled since; c10's waits for one to end,
    # the seven between were dropped without starting.
    assert held.names() == ["load_steps", "load_steps"] and session.running("load") == []
    _drain(held)
    assert state.case_id == "c10" and model.case_id == "c10"
    assert [e[1] for e in seen if e[0] == "case_loaded"] == ["c10"]  # one load completed
    assert sorted(decoded) == ["c10", "c10", "c11", "c11"]  # its two files, then c11's ahead: each once


def test_a_running_load_stops_after_the_file_it_is_decoding(tmp_path, decoded):
    held = Held()
    model, state, session = _session(_dataset(tmp_path), run=held)
    job = held.jobs.pop(0)  # c0's load, started by opening the dataset
    gen = job.func(*job.args, **job.kwargs)
    assert next(gen) == (1, 2) and decoded == ["c0"]
    model.select_case("c1")  # superseded while decoding
    with pytest.raises(StopIteration) as stop:
        next(gen)
    assert stop.value.value is None and decoded == ["c0"]  # its second file is never decoded
    job.on_return(None)  # dropped: nothing of c0 is shown
    assert held.names() == ["load_steps"] and state.case_id is None
    _drain(held)
    assert state.case_id == "c1" and decoded == ["c0", "c1", "c1"]


def test_the_case_after_the_shown_one_is_decoded_ahead_in_the_browsers_order(tmp_path, decoded):
    model, state, session = _session(_dataset(tmp_path, n=8), prefetch=True)  # synchronous runner
    assert state.case_id == "c0" and decoded == ["c0", "c0", "c1", "c1"]  # c1 decoded ahead
    model.select_case("c1")
    assert state.case_id == "c1" and decoded[4:] == ["c2", "c2"]  # c1 came from the cache
    model.select_case("c4")
    assert decoded[6:] == ["c4", "c4", "c5", "c5"]
    model.select_case("c3")  # going backwards: the one before it
    assert decoded[10:] == ["c3", "c3"]  # c2 is cached already
    session.case_order = lambda: ["c3", "c7", "c6", "c0", "c1", "c2", "c4", "c5"]  # the browser, sorted
    model.select_case("c7")
    assert state.case_id == "c7" and decoded[12:] == ["c7", "c7", "c6", "c6"]  # c6 follows c7 there
    model.select_case("c6")
    assert state.case_id == "c6" and decoded[16:] == []  # from the cache; c0 after it is cached too
    assert state.volume is not None and session.running() == []


def test_the_prefetch_puts_the_next_case_on_its_grid_in_the_disk_cache(tmp_path, decoded, monkeypatch):
    from mriviewer.cache import grid as grid_module
    from mriviewer.cache.disk import DiskCache
    from mriviewer.cache.memory import VolumeCache

    resampled: list[str] = []
    real = grid_module.resample_volume

    def resample(vol, *args, **kwargs):
        resampled.append(Path(vol.sources[0]).parent.name)
        return real(vol, *args, **kwargs)

    monkeypatch.setattr(grid_module, "resample_volume", resample)
    cache = VolumeCache(disk=DiskCache(tmp_path / "cache"))
    model, state, session = _session(_dataset(tmp_path, n=3), prefetch=True, cache=cache)
    # c0 shown on the FLAIR grid (FLAIR itself is on it: only T2w is resampled), then c1 put on its own
    assert resampled == ["c0", "c1"]
    model.select_case("c1")
    assert state.case_id == "c1" and state.volume.shape == (12, 12, 8)
    assert resampled[2:] == ["c2"]  # c1 came on its grid from the disk cache; c2 ahead
    assert decoded == ["c0", "c0", "c1", "c1", "c2", "c2"]


def test_moving_elsewhere_cancels_the_prefetch_and_moving_to_it_waits_for_it(tmp_path, decoded):
    held = Held()
    model, state, session = _session(_dataset(tmp_path, n=6), run=held, prefetch=True)
    held.run(0)  # c0 shown; c1 is decoded ahead
    assert held.names() == ["prefetch_steps"] and state.case_id == "c0"
    model.select_case("c1")  # the case being prefetched: its load waits for the prefetch
    assert held.names() == ["prefetch_steps"]
    held.run(0)
    assert held.names() == ["load_steps"] and decoded == ["c0", "c0", "c1", "c1"]
    held.run(0)
    assert state.case_id == "c1" and decoded == ["c0", "c0", "c1", "c1"]  # not decoded twice
    assert held.names() == ["prefetch_steps"]  # c2 ahead
    model.select_case("c4")  # elsewhere: c2's prefetch is cancelled
    held.run(held.names().index("prefetch_steps"))
    assert "c2" not in decoded
    _drain(held)
    assert state.case_id == "c4" and decoded[4:] == ["c4", "c4", "c5", "c5"]


def test_the_checkpoints_roles_are_worked_out_in_its_loading_job(tmp_path, monkeypatch):
    held = Held()
    model, state, session = _session(_dataset(tmp_path), run=held)
    held.jobs.clear()
    calls: list[tuple[bool, str]] = []

    class Placed(FakePredictor):
        def role_of(self, case, dataset=None) -> str:
            calls.append((threading.current_thread() is threading.main_thread(), getattr(case, "case_id", case)))
            assert dataset is model.dataset
            return super().role_of(case, dataset)

    monkeypatch.setattr(model, "open_predictor", lambda path, device, modalities: Placed())
    session.load_checkpoint(tmp_path / "fake.pt")
    before: list = []
    held.run(held.names().index("open_checkpoint"), thread=True, before_callbacks=lambda: before.extend(calls))
    assert before == [(False, "c0"), (False, "c1"), (False, "c2")]  # every case, in the worker
    assert isinstance(model.predictor, Placed)


def test_neighbour_follows_the_way_the_user_goes():
    order = ["a", "b", "c"]
    assert neighbour(order, "b", None) == "c" and neighbour(order, "b", "a") == "c"
    assert neighbour(order, "b", "c") == "a"  # came back from c
    assert neighbour(order, "c", "b") is None and neighbour(order, "a", "b") is None
    assert neighbour(order, "x", None) is None


def test_decode_lane_keeps_only_the_latest_waiting_load():
    lane = DecodeLane(slots=1)
    started: list[str] = []

    def start(name):
        def go():
            lane.started()
            started.append(name)
            return name
        return go

    assert lane.request("a", start("a")) == "a"
    assert lane.request("b", start("b")) is None and lane.request("c", start("c")) is None
    lane.ended(Job("load"))
    assert started == ["a", "c"]  # b was replaced while it waited
    lane = DecodeLane(slots=2)
    prefetch = Job("prefetch")
    lane.started()
    lane.prefetch_started("d", prefetch)
    assert lane.free and lane.prefetches("d")
    assert lane.request("d", start("d")) is None  # a slot is free, but d is being decoded: it waits
    lane.ended(prefetch)
    assert started == ["a", "c", "d"] and not lane.prefetches("d")
