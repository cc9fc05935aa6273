"""A distilled judge as ``judgeq distill`` shows it once trained: the artifact and its holdout metrics.

(``judgeq judges`` describes distilled judges and cascades through their judge type, ``judges.types``.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def show_trained(path: Path, meta: dict[str, Any], json_out: bool) -> None:
    """The artifact and its holdout metrics: JSON, or two tables and the judgeq.toml line that uses it."""
    from .render import print_json

    if json_out:
        print_json({"artifact": str(path), **meta})
        return
    from rich.table import Table

    from .console import console as wide_console

    console = wide_console()
    rows = meta["rows"]
    summary = Table(title=f"{meta['name']}: distilled from {meta['teacher_version']}", title_justify="left",
                    show_header=False)
    summary.add_column()
    summary.add_column()
    for key, value in [
        ("artifact", str(path)),
        ("rows", f"{rows['total']:,} ({rows['train']:,} train, {rows['holdout']:,} holdout by cluster)"),
        ("accuracy", f"{meta['accuracy']:.3f}"),
        ("Cohen's kappa", f"{meta['kappa']:.3f}"),
        ("calibration error (ECE)", f"{meta['ece']:.3f}"),
        ("threshold", f"{meta['threshold']:.3f} (agreement {meta['agreement_at_threshold']:.3f} "
                      f"{'≥' if meta['target_reached'] else '<'} target {meta['target_agreement']:g})"),
        ("would escalate", f"{meta['escalation_share']:.1%} of items"),
    ]:
        summary.add_row(key, value)
    console.print(summary)
    classes = Table(title="per class (holdout)", title_justify="left")
    for column in ("label", "score", "precision", "recall", "support"):
        classes.add_column(column)
    for label, figures in meta["per_class"].items():
        classes.add_row(label, f"{meta['scores'][label]:g}", f"{figures['precision']:.3f}",
                        f"{figures['recall']:.3f}", str(figures["support"]))
    console.print(classes)
    console.print(f'use it: [judges.{meta["name"]}] type = "distilled", artifact = "{path}"')
