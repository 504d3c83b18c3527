"""The report's image pages: every modality in three planes without and with the Grad-CAM, a 2D image
as stored, and the segmentation in BraTS label colours with its legend (:data:`SEG_LEGEND`).
"""

from __future__ import annotations

import numpy as np

from mriviewer.core.colour import LABEL_COLOURS
from mriviewer.core.planes import (
    PLANES,
    plane_axes,
)
from mriviewer.reporting.flowables import _grid_table, _image_flowable, _plane_cell, _t
from mriviewer.reporting.inputs import ExportCancelled, ReportInputs
from mriviewer.reporting.render import render_planes

#: BraTS segmentation labels: value → meaning (colours: :data:`mriviewer.core.colour.LABEL_COLOURS`).
#: BraTS 2017–2021 number the enhancing tumour 4; BraTS 2023 renumbered it 3.
SEG_LEGEND: dict[int, str] = {
    1: "necrotic / non-enhancing tumour core (NCR)",
    2: "peritumoural oedema (ED)",
    4: "enhancing tumour (ET)",
    3: "enhancing tumour (ET), BraTS 2023 numbering",
}


def _image_sections(inputs: ReportInputs, st, width, cancel) -> list:
    from reportlab.platypus import KeepTogether, Paragraph, Spacer

    vol, cam = inputs.volume, inputs.cam
    pred = inputs.prediction
    is_2d = vol.is_2d or inputs.case.is_2d
    mods = inputs.modalities or {vol.modality or "image": vol}
    head = [Paragraph("Images" if is_2d else "Images at the crosshair", st["h2"])]
    out: list = []
    explained = inputs.cam_class or pred.class_name
    if explained != pred.class_name:
        explained += f" (not the predicted class, {pred.class_name})"
    cam_text = (f"Grad-CAM of the class <b>{_t(explained)}</b> ({_t(inputs.cmap)} colour map, transparent at "
                f"or below {inputs.threshold:.2f}, opacity {inputs.opacity:.2f}, as in the viewer; "
                "computed on the model's input, scaled to its maximum over the case). It shows where the "
                "network's evidence lies, not a lesion.")
    if cam is None:
        cam_text = "Grad-CAM: not available for this case."
    elif not np.any(cam > 0):
        cam_text = (f"Grad-CAM of the class <b>{_t(explained)}</b> is empty for this case: no position holds "
                    "positive evidence for this class, so the map points nowhere and no overlay is drawn.")
    if is_2d:
        head.append(Paragraph(cam_text, st["small"]))
        return [KeepTogether(head + _images_2d(inputs, st, width, mods))]

    rad = inputs.radiological
    conv = "radiological" if rad else "neurological"
    head.append(Paragraph(
        f"Each modality resampled onto the {_t(vol.modality or 'reference')} grid (the model's first input, on "
        f"which Grad-CAM lies) and cut in three planes through the crosshair (cyan lines), {conv} convention, "
        f"orientation letters at the edges. Top row: without overlay; bottom row: " + cam_text, st["small"]))
    col = width / 3
    box = min(col - 2 * 9 - 4, 110)  # two modalities per A4 page
    shape = vol.shape
    caps = []
    for plane in PLANES:
        s = plane_axes(plane)[0]
        caps.append(Paragraph(f"{plane}, slice {int(inputs.cursor[s]) + 1} of {shape[s]}", st["caption"]))
    for name, v in mods.items():
        if cancel():
            raise ExportCancelled
        win = inputs.window if inputs.window and name == vol.modality else None
        plain = render_planes(v, inputs.cursor, None, win, rad, grid=vol)
        rows = [caps, [_plane_cell(plain[p], p, rad, st, box) for p in PLANES]]
        if cam is not None:
            over = render_planes(v, inputs.cursor, cam, win, rad, inputs.cmap, inputs.opacity, grid=vol,
                                 threshold=inputs.threshold)
            rows.append([Paragraph(f"{_t(name)} with Grad-CAM ({_t(inputs.cam_class or pred.class_name)})", st["caption"]), "", ""])
            rows.append([_plane_cell(over[p], p, rad, st, box) for p in PLANES])
        title = f"{_t(name)}" + (" — model input" if name in inputs.model_modalities else "")
        block = [Paragraph(title, st["h3"]), _grid_table(rows, col), Spacer(1, 2)]
        out.append(KeepTogether((head if not out else []) + block))
    if inputs.segmentation is not None:
        out += _segmentation_section(inputs, st, width, mods, caps, col, box)
    return out


def _images_2d(inputs: ReportInputs, st, width, mods) -> list:
    """The 2D image as stored and with its Grad-CAM, side by side (no crosshair, no letters)."""
    from reportlab.platypus import Paragraph

    vol, cam = inputs.volume, inputs.cam
    name, v = next(iter(mods.items()))
    win = inputs.window if inputs.window and name == vol.modality else None
    box = (width - 12) / 2
    plain = render_planes(v, inputs.cursor, None, win, True, grid=vol, crosshair=False, size=512,
                          planes=("axial",))["axial"]
    cells = [_image_flowable(plain, box, box)]
    heads = [Paragraph("Image", st["caption"])]
    if cam is not None:
        over = render_planes(v, inputs.cursor, cam, win, True, inputs.cmap, inputs.opacity, grid=vol,
                             crosshair=False, threshold=inputs.threshold, size=512, planes=("axial",))["axial"]
        cells.append(_image_flowable(over, box, box))
        heads.append(Paragraph("Image with Grad-CAM", st["caption"]))
    return [_grid_table([heads, cells], width / 2)]


def _segmentation_section(inputs: ReportInputs, st, width, mods, caps, col, box) -> list:
    from reportlab.lib import colors
    from reportlab.platypus import KeepTogether, Paragraph, Table, TableStyle

    vol, seg = inputs.volume, inputs.segmentation
    name, v = next(iter(mods.items()))
    win = inputs.window if inputs.window and name == vol.modality else None
    imgs = render_planes(v, inputs.cursor, None, win, inputs.radiological, grid=vol, labels=seg)
    values = np.rint(np.nan_to_num(np.asarray(seg.data, dtype=np.float32))).astype(np.int64)
    counts = np.bincount(values[values > 0].ravel()) if (values > 0).any() else np.zeros(1, int)
    present = {int(k): int(c) for k, c in enumerate(counts) if k > 0 and c > 0}
    legend = [[Paragraph("<b>Colour</b>", st["cell"]), Paragraph("<b>Label</b>", st["cell"]),
               Paragraph("<b>Meaning (BraTS)</b>", st["cell"]), Paragraph("<b>Voxels in this mask</b>", st["cell"])]]
    style = [("FONTSIZE", (0, 0), (-1, -1), 8), ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
             ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.black),
             ("TOPPADDING", (0, 0), (-1, -1), 1), ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5)]
    shown = [1, 2, 4, 3] + sorted(k for k in present if k not in SEG_LEGEND)
    for value in shown:
        if value == 3 and 3 not in present:
            continue
        rgb = LABEL_COLOURS.get(value, (0, 200, 255))
        row = len(legend)
        legend.append(["", str(value), Paragraph(_t(SEG_LEGEND.get(value, "other label")), st["cell"]),
                       str(present.get(value, 0))])
        style.append(("BACKGROUND", (0, row), (0, row), colors.Color(*(c / 255 for c in rgb))))
    tab = Table(legend, colWidths=[14 * 2.8346, 14 * 2.8346, 95 * 2.8346, 35 * 2.8346], hAlign="LEFT")
    tab.setStyle(TableStyle(style))
    rows = [caps, [_plane_cell(imgs[p], p, inputs.radiological, st, box) for p in PLANES]]
    note = ("Planes through the crosshair. Labels 1 necrotic core, 2 oedema, 4 enhancing tumour (3 in BraTS "
            "2023); values are rounded to integers (some files were interpolated).")
    if present:
        centre = seg.voxel_to_world(np.argwhere(values > 0).mean(axis=0))
        ijk = np.rint(vol.world_to_voxel(centre)).astype(int)
        note += (f" The labelled region's centre is at RAS ({', '.join(f'{v:.1f}' for v in centre)}) mm, voxel "
                 f"({', '.join(map(str, ijk))}) of the {vol.modality or 'reference'} grid.")
    return [KeepTogether([
        Paragraph(f"Segmentation — {_t(inputs.segmentation_name or 'mask')} over {_t(name)}", st["h3"]),
        _grid_table(rows, col), Paragraph(_t(note), st["small"]), tab])]
