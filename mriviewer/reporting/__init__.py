"""Reports: what a case report says (:mod:`.inputs`), its images (:mod:`.render`), the PDF
(:mod:`.pdf`), the batch export (:mod:`.batch`) and the predictions CSV (:mod:`.predictions_csv`)."""
