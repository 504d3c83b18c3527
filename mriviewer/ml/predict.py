"""Prediction and Grad-CAM from a saved checkpoint.

Grad-CAM (Selvaraju et al., 2017, "Grad-CAM: Visual Explanations from Deep Networks via
Gradient-based Localization") is computed with MONAI's ``monai.visualize.GradCAM`` on the last
residual stage (``layer4``) of both models. For ``resnet18-2d`` it runs on every axial slice of the
case that contains anatomy (at most :data:`MAX_CAM_SLICES`, evenly spaced, the rest interpolated)
and the per-slice maps are stacked; slices outside the head get zero; for
``r3d-18`` on the whole stack. The map is scaled to [0, 1] over the whole volume (not per
slice, so slices the network ignores stay dark) and resampled (trilinear) to the canonical grid
of the case's first input modality, so the viewer overlays it voxel for voxel. Outside the head
(:func:`head_mask`) the map is set to zero.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..datasets import Case
from ..errors import CheckpointError
from ..volume import Volume
from .config import TrainConfig
from .data import CaseInput, Preprocessor, normalise_channels
from .engine import CHECKPOINT_FORMAT, resolve_device

__all__ = ["Predictor", "Prediction", "GradCamResult", "MAX_CAM_SLICES", "head_mask"]

#: Upper bound on slices run through a 2D model for one Grad-CAM volume.
MAX_CAM_SLICES = 64


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
    ``reference`` (a canonical RAS volume); ``class_index`` is the class explained."""

    cam: np.ndarray
    reference: Volume
    class_index: int


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
        # The GUI predicts all cases in one worker while another computes Grad-CAM: the model
        # (and MONAI's hooks on it) serve one of them at a time.
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: str | Path, device: str = "auto") -> Predictor:
        """Read a checkpoint written by :class:`~mriviewer.ml.engine.Trainer`.

        Raises:
            CheckpointError: missing file, not an mriviewer checkpoint, or weights that do not
                fit the model it names.
        """
        import torch

        from .models import build_model

        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"{path}: checkpoint file not found")
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise CheckpointError(f"{path}: cannot read checkpoint ({type(exc).__name__}: {exc})") from exc
        if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(f"{path}: not an mriviewer checkpoint")
        config = TrainConfig.from_dict(ckpt["config"])
        class_names = list(ckpt["class_names"])
        model, _ = build_model(config.model, len(config.modalities), len(class_names), "none")
        try:
            model.load_state_dict(ckpt["model_state"])
        except RuntimeError as exc:
            raise CheckpointError(f"{path}: weights do not fit {config.model} ({exc})") from exc
        return cls(model, config, class_names, ckpt, path, device)

    @property
    def metrics(self) -> dict:
        """The checkpoint's best-epoch validation metrics (``epoch``, ``val_auc``,
        ``val_auc_ci95``, ``val_loss``, ``val_accuracy``)."""
        return dict(self.checkpoint.get("metrics", {}))

    def preprocessor(self, loader) -> Preprocessor:
        return Preprocessor(self.config, loader)

    def _tensor(self, array: np.ndarray):
        import torch

        return normalise_channels(torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))).to(self.device)

    def predict_input(self, ci: CaseInput, pre: Preprocessor) -> np.ndarray:
        """Class probabilities ``(K,)`` for a preprocessed case (mean over slices for 2D)."""
        import torch

        with self._lock, torch.no_grad():
            logits = self.model(self._tensor(pre.samples(ci))).float()
            probs = torch.softmax(logits, dim=1).mean(dim=0).cpu().numpy()
        return probs

    def predict(self, case: Case, loader) -> Prediction:
        """Predict one case.

        Raises:
            DatasetError / LoadError: the case lacks the model's modalities or cannot be read.
        """
        pre = self.preprocessor(loader)
        probs = self.predict_input(pre.case_input(case), pre)
        k = int(np.argmax(probs))
        return Prediction(case.case_id, probs, k, self.class_names[k], case.label)

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

    def _gradcam(self, ci: CaseInput, class_index: int) -> GradCamResult:
        import torch
        import torch.nn.functional as F
        from monai.visualize import GradCAM

        if self._cam is None:
            from .models import target_layer_name

            self._cam = GradCAM(nn_module=self.model, target_layers=target_layer_name(self.config.model),
                                postprocessing=lambda x: x)
        if self.config.is_3d:
            x = self._tensor(ci.array[None])
            cam = self._cam(x, class_idx=class_index)[0, 0]  # (D, H, W)
        else:
            # Slices without anatomy (the network never saw such input) get no map: their
            # Grad-CAM is noise that would otherwise set the volume's scale.
            depth = ci.array.shape[1]
            head = np.flatnonzero(Preprocessor.foreground_slices(ci.array))
            if head.size == 0:
                head = np.arange(depth)
            idx = np.unique(np.round(np.linspace(head[0], head[-1], min(head.size, MAX_CAM_SLICES))).astype(int))
            cam = torch.zeros((depth,) + ci.array.shape[2:])
            for start in range(0, len(idx), 16):
                chunk = idx[start:start + 16]
                x = self._tensor(ci.array[:, chunk].transpose(1, 0, 2, 3))
                cam[torch.from_numpy(chunk)] = self._cam(x, class_idx=class_index)[:, 0].detach().float().cpu()
            if len(idx) < head.size:  # fill skipped slices inside the head by linear interpolation
                for d in range(head[0], head[-1] + 1):
                    if d not in idx:
                        hi = int(np.searchsorted(idx, d))
                        a, b = idx[hi - 1], idx[hi]
                        w = (d - a) / (b - a)
                        cam[d] = (1 - w) * cam[a] + w * cam[b]
        cam = cam.detach().float().cpu()
        ref = ci.reference
        target = (ref.shape[2], ref.shape[1], ref.shape[0])  # (K, J, I)
        cam = F.interpolate(cam[None, None], size=target, mode="trilinear", align_corners=False)[0, 0]
        cam = cam.numpy().transpose(2, 1, 0)  # (I, J, K)
        cam = np.clip(cam, 0, None) * head_mask(ref.data)
        peak = float(cam.max())
        if peak > 0:
            cam = cam / peak
        self.model.zero_grad(set_to_none=True)
        return GradCamResult(np.ascontiguousarray(cam, dtype=np.float32), ref, class_index)
