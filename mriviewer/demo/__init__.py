"""The synthetic demo data set: brain phantoms (:mod:`.phantom`), the plan of cases and series
(:mod:`.plan`), a DICOM writer (:mod:`.dicom_writer`) and the dataset on disk (:mod:`.dataset`).
Everything here is computer-generated, not images of any person."""
