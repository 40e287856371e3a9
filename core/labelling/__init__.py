"""Which response to label next: the queue (`queue`; `sample_queue` for eval sets that keep a
sample), the active rule that labels where a label settles the most (`active`) and the share
that gets a second, blind label (`overlap`)."""
