"""One module per folder layout; each offers ``_claims_*`` (does this folder look like me?) and
``_build_*`` (its dataset), registered in :data:`mriviewer.data.discover.LAYOUTS`."""
