"""reportlab building blocks of the report: safe text, styles, key/value tables, image grids, the
footer on every page ("Research use only — not for diagnosis.", "page N of M").
"""

from __future__ import annotations

import io
from xml.sax.saxutils import escape as _xml_escape

import numpy as np

from mriviewer import RESEARCH_ONLY, __version__
from mriviewer.core.planes import (
    orientation_letters,
)


def _t(value) -> str:
    """Text safe for a Paragraph in the PDF's standard (WinAnsi) fonts: XML-escaped, characters
    the font lacks replaced by ``?``."""
    s = str(value).encode("cp1252", "replace").decode("cp1252")
    return _xml_escape(s)


# ---------------------------------------------------------------------------- PDF
def _styles():
    from reportlab.lib import colors
    from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet

    base = getSampleStyleSheet()
    body = ParagraphStyle("body", parent=base["BodyText"], fontSize=8.5, leading=10.5, spaceAfter=1)
    return {
        "title": ParagraphStyle("title", parent=base["Title"], fontSize=15, leading=18, alignment=0, spaceAfter=2),
        "banner": ParagraphStyle("banner", parent=body, fontName="Helvetica-Bold", fontSize=10.5, leading=13,
                                 textColor=colors.HexColor("#b00000"), spaceAfter=4),
        "h2": ParagraphStyle("h2", parent=base["Heading2"], fontSize=11.5, leading=14, spaceBefore=7, spaceAfter=3),
        "h3": ParagraphStyle("h3", parent=base["Heading3"], fontSize=10, leading=12, spaceBefore=6, spaceAfter=2),
        "body": body,
        "small": ParagraphStyle("small", parent=body, fontSize=7.5, leading=9),
        "cell": ParagraphStyle("cell", parent=body, fontSize=8, leading=9.5, spaceAfter=0),
        "key": ParagraphStyle("key", parent=body, fontName="Helvetica-Bold", fontSize=8, leading=9.5, spaceAfter=0),
        "big": ParagraphStyle("big", parent=body, fontName="Helvetica-Bold", fontSize=12.5, leading=15.5,
                              spaceAfter=3),
        "warn": ParagraphStyle("warn", parent=body, fontSize=8, leading=10, textColor=colors.HexColor("#a04000"),
                               leftIndent=8, firstLineIndent=-8),
        "caption": ParagraphStyle("caption", parent=body, fontSize=7.5, leading=9, alignment=1, spaceAfter=0),
        "letter": ParagraphStyle("letter", parent=body, fontName="Helvetica-Bold", fontSize=7.5, leading=9,
                                 alignment=1, spaceAfter=0),
    }


def _kv_table(rows, st, width, key_width):
    """A two-column ``field | value`` table of Paragraphs."""
    from reportlab.lib import colors
    from reportlab.platypus import Paragraph, Table, TableStyle

    data = [[Paragraph(_t(k), st["key"]), Paragraph(v if isinstance(v, _Markup) else _t(v), st["cell"])]
            for k, v in rows]
    tab = Table(data, colWidths=[key_width, width - key_width], hAlign="LEFT")
    tab.setStyle(TableStyle([
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#dddddd")),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5), ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
        ("LEFTPADDING", (0, 0), (-1, -1), 2),
    ]))
    return tab


class _Markup(str):
    """Text already escaped for a Paragraph (may hold markup)."""


def _image_flowable(rgb: np.ndarray, box_w: float, box_h: float):
    """A platypus Image of ``rgb`` scaled to fit ``box_w × box_h`` points, aspect kept."""
    from PIL import Image as PILImage
    from reportlab.platypus import Image

    buf = io.BytesIO()
    PILImage.fromarray(rgb).save(buf, format="PNG")
    buf.seek(0)
    h, w = rgb.shape[:2]
    scale = min(box_w / w, box_h / h)
    return Image(buf, width=w * scale, height=h * scale)


def _plane_cell(rgb, plane: str, radiological: bool, st, box: float, letters: bool = True):
    """An image with orientation letters on its four sides (a 3×3 table)."""
    from reportlab.platypus import Paragraph, Table, TableStyle

    img = _image_flowable(rgb, box, box)
    if not letters:
        return img
    let = orientation_letters(plane, radiological)
    lw = 9
    tab = Table([["", Paragraph(let["top"], st["letter"]), ""],
                 [Paragraph(let["left"], st["letter"]), img, Paragraph(let["right"], st["letter"])],
                 ["", Paragraph(let["bottom"], st["letter"]), ""]],
                colWidths=[lw, box, lw])
    tab.setStyle(TableStyle([
        ("ALIGN", (0, 0), (-1, -1), "CENTER"), ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("LEFTPADDING", (0, 0), (-1, -1), 0), ("RIGHTPADDING", (0, 0), (-1, -1), 0),
        ("TOPPADDING", (0, 0), (-1, -1), 0), ("BOTTOMPADDING", (0, 0), (-1, -1), 0),
    ]))
    return tab


def _grid_table(rows, col_width):
    """Rows of flowables in equal columns, centred, little padding."""
    from reportlab.platypus import Table, TableStyle

    tab = Table(rows, colWidths=[col_width] * len(rows[0]))
    style = [("ALIGN", (0, 0), (-1, -1), "CENTER"), ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
             ("LEFTPADDING", (0, 0), (-1, -1), 1), ("RIGHTPADDING", (0, 0), (-1, -1), 1),
             ("TOPPADDING", (0, 0), (-1, -1), 1), ("BOTTOMPADDING", (0, 0), (-1, -1), 2)]
    for r, row in enumerate(rows):
        if len(row) > 1 and all(c == "" for c in row[1:]):
            style.append(("SPAN", (0, r), (-1, r)))
    tab.setStyle(TableStyle(style))
    return tab


def _footer(case_id: str):
    """``onPage`` callback drawing the footer of every page."""
    from reportlab.lib import colors
    from reportlab.lib.units import mm

    def draw(canvas, doc):
        canvas.saveState()
        canvas.setStrokeColor(colors.HexColor("#999999"))
        canvas.setLineWidth(0.4)
        canvas.line(doc.leftMargin, 13 * mm, doc.leftMargin + doc.width, 13 * mm)
        canvas.setFillColor(colors.HexColor("#b00000"))
        canvas.setFont("Helvetica-Bold", 8)
        canvas.drawString(doc.leftMargin, 9 * mm, RESEARCH_ONLY)
        canvas.setFillColor(colors.black)
        canvas.setFont("Helvetica", 7)
        text = f"mriviewer {__version__} — case {case_id}".encode("cp1252", "replace").decode("cp1252")
        canvas.drawString(doc.leftMargin, 5.5 * mm, text[:120])
        canvas.restoreState()

    return draw


def _numbered_canvas():
    """A canvas class that writes "page N of M" once the page count is known."""
    from reportlab.lib.units import mm
    from reportlab.pdfgen import canvas

    class NumberedCanvas(canvas.Canvas):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._pages = []

        def showPage(self):  # noqa: N802  (reportlab's name)
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self):
            total = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                self.setFont("Helvetica", 7)
                self.drawRightString(self._pagesize[0] - 15 * mm, 9 * mm, f"page {self._pageNumber} of {total}")
                super().showPage()
            super().save()

    return NumberedCanvas
