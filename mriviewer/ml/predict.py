"""Prediction and Grad-CAM from a saved checkpoint.

Grad-CAM (Selvaraju et al., 2017, "Grad-CAM: Visual Explanations from Deep Networks via
Gradient-based Localization") is computed with MONAI's ``monai.visualize.GradCAM`` on the last
block of each model (:func:`~.models.target_layer_name`; the last block of an earlier stage when
inputs are so small that the last one's map has fewer than :data:`MIN_CAM_CELLS` cells along some
spatial axis, :meth:`Predictor.cam_layer`), differentiating the
contrastive score z_c − mean z_other (:class:`_ContrastiveLogits`). For 2D models it runs on every
axial slice within the ``slice_range`` the model was trained on (at most :data:`MAX_CAM_SLICES`,
evenly spaced, the rest interpolated), each slice's map weighted by that slice's probability of the
class; other slices get zero. 3D models see the whole stack, and a centre pad/crop of the network
grid is undone before resampling. The map is scaled to [0, 1] over the whole volume (not per
slice, so slices the network ignores stay dark) and resampled (trilinear) to the canonical grid
of the case's first input modality, so the viewer overlays it voxel for voxel. Outside the head
(:func:`head_mask`) the map is set to zero.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mriviewer.core.errors import CheckpointError
from mriviewer.core.volume import Volume
from mriviewer.data.cases import Case
from mriviewer.ml.config import TrainConfig
from mriviewer.ml.device import resolve_device
from mriviewer.ml.engine import probabilities
from mriviewer.ml.preprocess import CaseInput, Preprocessor, normalise_channels

__all__ = ["Predictor", "Prediction", "GradCamResult", "MAX_CAM_SLICES", "head_mask"]

#: Upper bound on slices run through a 2D model for one Grad-CAM volume.
MAX_CAM_SLICES = 64

#: Fewest cells along every spatial axis of the feature map Grad-CAM reads: the 7×7 grid of
#: ResNet's last block at 224 px, on which Selvaraju et al. (2017) computed their ResNet maps.
#: Coarser maps put a cell boundary every 1/4 of the field of view or more, and in a barely
#: trained network their few cells are all alike (the map shows the receptive field, not the
#: lesion); :meth:`Predictor.cam_layer` then reads an earlier block. On an axis of fewer than
#: 28 samples, cells of 4 samples suffice.
MIN_CAM_CELLS = 7


@dataclass
class Prediction:
    """A case's predicted class: ``probs`` ``(K,)`` sums to 1; ``label`` is the known truth
    (``None`` if unknown)."""

    case_id: str
    probs: np.ndarray
    predicted: int
    class_name: str
    label: int | None = None

    @property
    def probability(self) -> float:
        """Probability of the predicted class."""
        return float(self.probs[self.predicted])


@dataclass
class GradCamResult:
    """Grad-CAM of one case: ``cam`` ``(I, J, K)`` float32 in [0, 1] on the grid of
    ``reference`` (a canonical RAS volume); ``class_index`` is the class explained; ``layer``
    the network layer whose activations were weighted (e.g. ``"layer4"``)."""

    cam: np.ndarray
    reference: Volume
    class_index: int
    layer: str = ""

    @property
    def empty(self) -> bool:
        """True when the map is zero everywhere: the weighted activations of ``layer`` are ≤ 0
        at every position inside the head, i.e. Grad-CAM finds no positive evidence for the
        class (Selvaraju et al. keep only the positive part). Such a map points nowhere; it is
        said, not shown as a blank overlay."""
        return not bool(np.any(self.cam > 0))

    def describe(self, class_name: str) -> str:
        """One line for the GUI and reports, e.g. ``Grad-CAM for 'LGG' (layer4, T1wCE grid)``,
        or why nothing is shown."""
        where = f"{self.layer}, " if self.layer else ""
        if self.empty:
            return (f"Grad-CAM for '{class_name}' is empty ({where}{self.reference.modality} grid): no "
                    f"position holds positive evidence for this class, so the map points nowhere")
        return f"Grad-CAM for '{class_name}' ({where}{self.reference.modality} grid)"


def head_mask(data: np.ndarray) -> np.ndarray:
    """``(I, J, K)`` float32 mask of the head: voxels above 5 % of the 99th percentile, holes
    filled and dilated by 2 voxels (scipy.ndimage). Grad-CAM is upsampled from a coarse grid
    (4×4 cells at 128 px) and would otherwise colour the air around the head."""
    from scipy import ndimage

    finite = np.nan_to_num(data)
    hi = float(np.percentile(finite[::4, ::4, ::4], 99)) if finite.size else 0.0
    mask = finite > 0.05 * hi
    if not mask.any():
        return np.ones(data.shape, dtype=np.float32)
    mask = ndimage.binary_dilation(mask, iterations=2)
    mask = ndimage.binary_fill_holes(mask)
    return mask.astype(np.float32)


class Predictor:
    """A trained model ready to predict cases.

    Use :meth:`load` to read a ``best.pt`` written by the engine.
    """

    def __init__(self, model, config: TrainConfig, class_names: list[str], checkpoint: dict,
                 path: Path | None = None, device: str = "auto") -> None:
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.config = config
        self.class_names = class_names
        self.checkpoint = checkpoint
        self.path = path
        self._cam = None
        self._cam_shape = None
        self._cam_layer = ""
        self._seen = None  # the checkpoint's split as a SeenIndex, built on first use
        # The GUI predicts all cases in one worker while another computes Grad-CAM: the model
        # (and MONAI's hooks on it) serve one of them at a time.
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: str | Path, device: str = "auto") -> Predictor:
        """Read a checkpoint (:func:`~.checkpoint.load_checkpoint`) and build its network.

        Raises:
            CheckpointError: missing file, not an mriviewer checkpoint, an invalid config, or
                weights that do not fit the model it names.
        """
        from mriviewer.ml.checkpoint import load_checkpoint, model_from_checkpoint

        ckpt = load_checkpoint(path)
        model = model_from_checkpoint(ckpt)
        return cls(model, ckpt["config"], list(ckpt["class_names"]), ckpt, Path(path), device)

    @property
    def metrics(self) -> dict:
        """The checkpoint's metrics: ``{"validation": chosen epoch, "test": test metrics with
        intervals and warnings (``None`` for checkpoints without a test set), "cv": …}``."""
        return dict(self.checkpoint.get("metrics", {}))

    @property
    def test_metrics(self) -> dict | None:
        """The reported (test) metrics, or ``None``."""
        return self.metrics.get("test") or None

    def seen_by(self, case, dataset=None):
        """Whether the run that wrote this checkpoint saw ``case``, and how: a
        :class:`~.seen.Seen` ``(role, how)`` from the checkpoint's recorded split
        (:class:`~.seen.SeenIndex`, built once).

        ``role`` is ``"train"``, ``"validation"`` or ``"test"`` for a case of the split,
        ``"train-patient"`` / ``"validation-patient"`` for another study of a patient in train /
        validation (its files and content are new, its patient is not: no external test), else
        ``"external"``. ``case`` is a :class:`Case` or a case id. A case is matched by its files
        (:func:`~mriviewer.data.cases.case_identity`: the same files at the same paths), then by
        its content (:func:`~mriviewer.data.cases.content_fingerprint`: a copy elsewhere is still
        seen) when the checkpoint records fingerprints — and then never by its id alone: another
        dataset's case ``00001`` is not this run's ``00001``. Checkpoints without fingerprints
        (older runs) fall back to the id; a bare id matches by id. Then by its patient, where the
        checkpoint records patients: a DICOM PatientID in any dataset, an id read from the
        layout or names only in ``dataset`` when it is the trained folder or a copy of it
        (:mod:`~.seen`); without ``dataset`` only the DICOM PatientID. Raises nothing.
        """
        if self._seen is None:
            from mriviewer.ml.seen import SeenIndex

            self._seen = SeenIndex(self.checkpoint.get("split", {}))
        return self._seen.seen_by(case, dataset)

    def role_of(self, case, dataset=None) -> str:
        """The role of :meth:`seen_by`: ``"train"``, ``"validation"``, ``"test"``,
        ``"train-patient"``, ``"validation-patient"`` or ``"external"``. Raises nothing."""
        return self.seen_by(case, dataset).role

    def check_modalities(self, available: list[str], allow_missing: bool = False) -> list[str]:
        """The model's modalities absent from ``available`` (a dataset's); with some missing
        and ``allow_missing`` false this is an error, never silent zeros.

        Raises:
            CheckpointError: the data lacks a modality the model was trained on.
        """
        wanted = self.config.modalities
        subs = self.config.modality_fallback
        missing = [m for m in wanted if m not in available and not any(s in available for s in subs.get(m, []))]
        if missing and not allow_missing and not (self.config.color == "rgb"):
            raise CheckpointError(
                f"the model was trained on {', '.join(wanted)}; this data lacks {', '.join(missing)} "
                "(use --allow-missing-modality to predict with zeros in those channels)")
        return missing

    def preprocessor(self, loader) -> Preprocessor:
        return Preprocessor(self.config, loader)

    def _tensor(self, array: np.ndarray):
        import torch

        x = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
        return normalise_channels(x, self.config.normalise).to(self.device)

    def predict_input(self, ci: CaseInput, pre: Preprocessor) -> np.ndarray:
        """Class probabilities ``(K,)`` for a preprocessed case (mean over slices for 2D)."""
        import torch

        with self._lock, torch.no_grad():
            logits = self.model(self._tensor(pre.samples(ci))).float()
            probs = probabilities(logits).mean(dim=0).cpu().numpy()
        return probs

    def predict(self, case: Case, loader) -> Prediction:
        """Predict one case.

        Raises:
            DatasetError / LoadError: the case lacks the model's modalities or cannot be read.
        """
        pre = self.preprocessor(loader)
        return self._prediction(case, self.predict_input(pre.case_input(case), pre))

    def _prediction(self, case: Case, probs: np.ndarray) -> Prediction:
        k = int(np.argmax(probs))
        return Prediction(case.case_id, probs, k, self.class_names[k], case.label)

    def predict_with_gradcam(self, case: Case, loader, class_index: int | None = None
                             ) -> tuple[Prediction, GradCamResult]:
        """:meth:`predict` and :meth:`gradcam` (of ``class_index``, default the predicted class)
        from one preprocessing of the case (what a report needs).

        Raises:
            DatasetError / LoadError: the case lacks the model's modalities or cannot be read.
        """
        pre = self.preprocessor(loader)
        ci = pre.case_input(case)
        prediction = self._prediction(case, self.predict_input(ci, pre))
        with self._lock:
            cam = self._gradcam(ci, prediction.predicted if class_index is None else class_index)
        return prediction, cam

    def gradcam(self, case: Case, loader, class_index: int | None = None) -> GradCamResult:
        """Grad-CAM of ``case`` for ``class_index`` (default: the predicted class).

        Returns:
            :class:`GradCamResult` whose ``cam`` has the shape of ``reference.data``.
        """
        pre = self.preprocessor(loader)
        ci = pre.case_input(case)
        if class_index is None:
            class_index = int(np.argmax(self.predict_input(ci, pre)))
        with self._lock:
            return self._gradcam(ci, class_index)

    def cam_layer(self, sample_shape: tuple[int, ...]) -> str:
        """The Grad-CAM layer for inputs of ``sample_shape`` (``(C, H, W)`` or ``(C, D, H, W)``).

        The deepest of :func:`~.models.cam_layer_candidates` (the model's last block, then the
        last block of each earlier stage) whose map is fine enough along every spatial axis: at
        least ``min(MIN_CAM_CELLS, ceil(n / 4))`` cells for an input extent of ``n`` samples, i.e.
        :data:`MIN_CAM_CELLS` cells, or cells of at most 4 samples on short axes (a 16-slice
        stack). Every axis counts: R3D-18 and R(2+1)D-18 also halve the slice axis ``D`` in
        ``layer2``-``layer4``. At 32×32 px and 16 slices this reads ``layer2`` (8×8×8) of R3D-18
        rather than ``layer3`` (4×4×4), whose four cells a side are alike in a briefly trained
        network; at the presets' sizes (224 px, 112 px × 64 slices, 300 px) the last block
        passes. Without any such layer, the one with the most cells along its coarsest axis.
        Sizes come from one forward pass of zeros (forward hooks).
        """
        import torch

        from mriviewer.ml.models.registry import cam_layer_candidates

        candidates = cam_layer_candidates(self.config.model)
        sizes: dict[str, tuple[int, ...]] = {}
        hooks = []
        for name in candidates:
            mod = self.model.get_submodule(name)
            hooks.append(mod.register_forward_hook(
                lambda _m, _i, out, n=name: sizes.__setitem__(n, tuple(out.shape[2:]))))
        try:
            with torch.no_grad():
                self.model(torch.zeros((1,) + tuple(sample_shape), device=self.device))
        finally:
            for h in hooks:
                h.remove()
        spatial = tuple(sample_shape[1:])
        need = tuple(min(MIN_CAM_CELLS, -(-n // 4)) for n in spatial)

        def fine_enough(name: str) -> bool:
            size = sizes.get(name, ())
            return len(size) == len(need) and all(s >= m for s, m in zip(size, need, strict=True))

        for name in candidates:
            if fine_enough(name):
                return name
        return max(candidates, key=lambda n: min(sizes.get(n, (0,)) or (0,)))

    def _gradcam(self, ci: CaseInput, class_index: int) -> GradCamResult:
        import torch
        import torch.nn.functional as F
        from monai.visualize import GradCAM

        shape = ci.array.shape if self.config.is_3d else (ci.array.shape[0],) + ci.array.shape[2:]
        if self._cam is None or self._cam_shape != shape:
            net = _ContrastiveLogits(self.model, self.checkpoint.get("n_outputs", 2) == 1)
            self._cam_layer = self.cam_layer(shape)
            self._cam = GradCAM(nn_module=net, target_layers=f"net.{self._cam_layer}", postprocessing=lambda x: x)
            self._cam_shape = shape
        if self.config.is_3d:
            x = self._tensor(ci.array[None])
            cam = self._cam(x, class_idx=class_index)[0, 0]  # (D, H, W)
        else:
            # Only the slices of the axial range the model was trained on (``slice_range`` of the
            # head) get a map: elsewhere the network never saw such input and its Grad-CAM is
            # out-of-distribution noise that would otherwise set the volume's scale.
            depth = ci.array.shape[1]
            fg = np.flatnonzero(Preprocessor.foreground_slices(ci.array))
            lo, hi = (fg[0], fg[-1]) if fg.size else (0, depth - 1)
            a, b = self.config.slice_range
            head = np.arange(int(np.floor(lo + (hi - lo) * a)), int(np.ceil(lo + (hi - lo) * b)) + 1)
            idx = np.unique(np.round(np.linspace(head[0], head[-1], min(head.size, MAX_CAM_SLICES))).astype(int))
            cam = torch.zeros((depth,) + ci.array.shape[2:])
            for start in range(0, len(idx), 16):
                chunk = idx[start:start + 16]
                x = self._tensor(ci.array[:, chunk].transpose(1, 0, 2, 3))
                maps = self._cam(x, class_idx=class_index)[:, 0].detach().float().cpu()
                with torch.no_grad():  # each slice's map weighted by that slice's probability of the class
                    p = probabilities(self.model(x))[:, class_index].float().cpu()
                cam[torch.from_numpy(chunk)] = maps * p[:, None, None]
            if len(idx) < head.size:  # fill skipped slices inside the head by linear interpolation
                for d in range(head[0], head[-1] + 1):
                    if d not in idx:
                        hi = int(np.searchsorted(idx, d))
                        a, b = idx[hi - 1], idx[hi]
                        w = (d - a) / (b - a)
                        cam[d] = (1 - w) * cam[a] + w * cam[b]
        cam = cam.detach().float().cpu()
        mid = ci.meta.get("grid_mid")
        if mid is not None:  # undo the centre pad/crop of the network grid (MONAI's is symmetric)
            from monai.transforms import ResizeWithPadOrCrop

            cam = torch.as_tensor(ResizeWithPadOrCrop(spatial_size=tuple(mid))(cam[None]))[0]
        ref = ci.reference
        target = (ref.shape[2], ref.shape[1], ref.shape[0])  # (K, J, I)
        cam = F.interpolate(cam[None, None], size=target, mode="trilinear", align_corners=False)[0, 0]
        cam = cam.numpy().transpose(2, 1, 0)  # (I, J, K)
        cam = np.clip(cam, 0, None) * head_mask(ref.data)
        peak = float(cam.max())
        if peak > 0:
            cam = cam / peak
        self.model.zero_grad(set_to_none=True)
        return GradCamResult(np.ascontiguousarray(cam, dtype=np.float32), ref, class_index, self._cam_layer)


class _ContrastiveLogits:
    """The network with contrastive scores ``s_c = z_c − mean_{k≠c} z_k`` as outputs: what
    Grad-CAM differentiates for class c.

    The raw logit z_c can be raised or lowered together with every other logit, and its map is
    then negative everywhere (all zero after ReLU); log-probabilities fix the sign but saturate
    (a confident model's gradient is exactly zero in float32). The difference to the other
    logits is linear, so neither happens. A one-logit (BCE) network's z becomes the two logits
    ``[−z/2, z/2]`` first (softmax ``[1 − σ(z), σ(z)]``), so s_1 = z and s_0 = −z.
    """

    def __new__(cls, net, one_logit: bool):
        import torch

        class ContrastiveLogits(torch.nn.Module):
            def __init__(self, net):
                super().__init__()
                self.net = net

            def forward(self, x):
                z = self.net(x).float()
                if one_logit:
                    z = torch.cat([-z[:, :1] / 2, z[:, :1] / 2], dim=1)
                k = z.shape[1]
                return z - (z.sum(dim=1, keepdim=True) - z) / max(k - 1, 1)

        return ContrastiveLogits(net).eval()
