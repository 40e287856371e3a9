"""What a decision asks of the labels: the minimum every cell gets before its verdict counts."""

# The labelled responses every (model, region) cell gets first. The calibration view warns
# below the same number, so "too few labels" means "the queue has not got there yet".
MIN_LABELS_PER_CELL = 10
