"""The markdown tables of docs/published-fits.md and docs/gap-fits.md from the saved
cross-validation results (examples/fits/cv/<case>.json, written by tune_all.py or by
`mlpot fit` on a configuration with its [search] table).

    python examples/fits/cv_report.py
"""

from __future__ import annotations

import json
from pathlib import Path

from tune_all import TARGETS

HERE = Path(__file__).resolve().parent


def _cell(row: dict, key: str, scale: float, digits: int) -> str:
    if key not in row:
        return "-"
    return f"{row[key] * scale:.{digits}f} ± {row[key + '_std'] * scale:.{digits}f}"


def _params(case: str, params: dict) -> str:
    if case.endswith("_gap"):
        return "(" + ", ".join(f"{s:.3g}" for s in params["default_sigma"]) + ")"
    return f"{params['energy_weight']:.3g} / {params['stress_weight']:.2g} / {params['ridge']:.2g}"


def table(cases) -> str:
    lines = [
        "| case | frames | CV E MAE (meV/atom) | CV F MAE (eV/Å) | target E / F | CV / target E / F | chosen |",
        "|---|---|---|---|---|---|---|",
    ]
    for case in cases:
        path = HERE / "cv" / f"{case}.json"
        if not path.exists():
            continue
        result = json.loads(path.read_text())
        row, target = result["cv"]["rows"]["all"], TARGETS[case]
        e, f = row["energy_mae"] * 1e3, row["force_mae"]
        lines.append(
            f"| {case} | {row['frames']} | {_cell(row, 'energy_mae', 1e3, 2)} | {_cell(row, 'force_mae', 1.0, 3)} "
            f"| {target[0]} / {target[1]} | {e / target[0]:.2f} / {f / target[1]:.2f} | {_params(case, result['params'])} |"
        )
    return "\n".join(lines)


def times(cases) -> str:
    lines = ["| case | trials | assemble (s) | trials (s) | fold fits (s) | CV table (s) | refit (s) |",
             "|---|---|---|---|---|---|---|"]
    for case in cases:
        path = HERE / "cv" / f"{case}.json"
        if path.exists():
            r = json.loads(path.read_text())
            t = r["seconds"]
            lines.append(f"| {case} | {len(r['trials'])} | {t['assemble']:.0f} | {t['search']:.0f} | {t['fold_fits']:.1f} "
                         f"| {t['cv_table']:.1f} | {t['refit']:.1f} |")
    return "\n".join(lines)


def main():
    linear = [c for c in TARGETS if not c.endswith("_gap")]
    gap = [c for c in TARGETS if c.endswith("_gap")]
    print(table(linear), "\n")
    print(times(linear), "\n")
    print(table(gap), "\n")
    print(times(gap))
    for case in TARGETS:
        path = HERE / "cv" / f"{case}.json"
        if not path.exists():
            continue
        rows = json.loads(path.read_text())["cv"]["rows"]
        print(f"\n{case}: per group, mean ± spread over the 5 folds\n")
        print("| group | frames | E MAE (meV/atom) | F MAE (eV/Å) |\n|---|---|---|---|")
        for name, row in rows.items():
            print(f"| {name} | {row['frames']} | {_cell(row, 'energy_mae', 1e3, 2)} | {_cell(row, 'force_mae', 1.0, 3)} |")


if __name__ == "__main__":
    main()
