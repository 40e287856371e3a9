"""Verdicts from posterior draws: what a decision asks of the labels (`rule`), what a cell must
pass besides the pooled posterior (`cell_checks`) and a candidate's decision per cell, region and
overall (`verdicts`)."""
