"""What an import did, as a value and as one line of text for the CLI and the app."""

from __future__ import annotations

from dataclasses import dataclass

from changeover.core.types import EvalSet


@dataclass
class ImportReport:
    """What an import did: `added` counts new rows per table (models, items, responses,
    judgments, ratings); re-importing the same file adds 0 of each."""

    eval_set: EvalSet
    rows: int
    added: dict[str, int]
    missing_judgments: dict[
        str, int
    ]  # metric -> unmappable (or empty) judge values stored as missing
    file: str = ""
    items: int = 0
    responses: int = 0  # distinct (item, model) in the file
    models: tuple[str, ...] = ()
    labels: int = 0  # human labels in the file
    kept_labels: int = (
        0  # file labels not added: the workspace already holds that rater's own label
    )
    kind: str = "responses"  # or "labels" (import_labels)
    open_labels: int = 0  # of `labels`: open ones (chosen by a person), left out of the fit
    not_in_force: int = 0  # rows of a ratings export skipped: retracted labels, retractions

    def summary(self) -> str:
        """A short human text: what was added, what was already there, what became missing."""
        a = self.added
        if self.kind == "responses":
            text = (
                f"imported {a.get('responses', 0):,} responses "
                f"({a.get('items', 0):,} items, {a.get('models', 0)} models), "
                f"{a.get('judgments', 0):,} judgments, {a.get('ratings', 0):,} labels "
                f"from {self.rows:,} rows of {self.file or 'the file'} into "
                f"{self.eval_set.name!r}"
            )
            held = self.responses - a.get("responses", 0)
            if self.rows and not any(a.get(k, 0) for k in ("responses", "judgments", "ratings")):
                text = (
                    f"nothing new: the {self.rows:,} rows of {self.file or 'the file'} are "
                    f"already in {self.eval_set.name!r}"
                )
            elif held > 0:  # an import adds; it never rewrites a stored response or verdict
                text += f"; {held:,} responses already there were kept as stored"
        else:
            text = (
                f"imported {a.get('ratings', 0):,} labels from {self.rows:,} rows of "
                f"{self.file or 'the file'} into {self.eval_set.name!r}"
            )
            already = self.labels - a.get("ratings", 0)
            if already > 0:
                text += f" ({already:,} already in the workspace)"
            if self.open_labels:
                text += (
                    f"; {self.open_labels:,} of the file's labels are open (chosen by a person): "
                    "kept apart and left out of the fit"
                )
            if self.not_in_force:
                text += f"; {self.not_in_force:,} rows not active (retracted) were skipped"
        if self.kept_labels:
            text += (
                f"; {self.kept_labels:,} labels already given by the same rater in the "
                "workspace were left as they are"
            )
        missing = {k: v for k, v in self.missing_judgments.items() if v}
        if missing:
            total = sum(missing.values())
            per = ", ".join(f"{k}: {v:,}" for k, v in missing.items())
            text += f"; {total:,} judge values unmappable -> missing ({per})"
        return text
