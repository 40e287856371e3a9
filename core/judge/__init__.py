"""The judge against the humans: agreement between raters and with the judge (`agreement`) and
the calibration table, cell by cell (`calibration`)."""
