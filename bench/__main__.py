"""Run every ``bench/bench_*.py`` module's ``run()`` and write the figures to bench/results.json.

``python -m bench`` runs all; ``python -m bench validation risk`` runs some; ``--quick`` runs the
small versions (the smoke test uses it).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import platform
import sys
import time
import traceback
from pathlib import Path

from rich.console import Console
from rich.table import Table

BENCH_DIR = Path(__file__).resolve().parent


def discover() -> list[str]:
    return sorted(path.stem.removeprefix("bench_") for path in BENCH_DIR.glob("bench_*.py"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench")
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default all: {', '.join(discover())})")
    parser.add_argument("--quick", action="store_true", help="small sizes, a few seconds each")
    parser.add_argument("--output", type=Path, default=BENCH_DIR / "results.json")
    args = parser.parse_args(argv)

    console = Console()
    names = args.names or discover()
    results: dict[str, dict] = {}
    failed = False
    for name in names:
        module = importlib.import_module(f"bench.bench_{name}")
        # A benchmark of an optional extra (the TFT's torch) is skipped, with the command that
        # installs and runs it, where the extra is not installed: not a failure of `make bench`.
        missing = {
            package: how
            for package, how in getattr(module, "REQUIRES", {}).items()
            if importlib.util.find_spec(package) is None
        }
        if missing:
            for package, how in missing.items():
                console.print(f"[yellow]bench {name} skipped[/yellow]: needs {package} ({how})")
            continue
        started = time.perf_counter()
        with console.status(f"bench {name}"):
            try:
                figures = module.run(quick=args.quick)
            except Exception:  # noqa: BLE001 - a broken benchmark is reported, the others still run
                failed = True
                console.print(f"[red]bench {name} failed[/red]\n{traceback.format_exc()}")
                continue
        figures["bench_seconds"] = round(time.perf_counter() - started, 2)
        results[name] = figures
        table = Table(title=f"bench {name}", title_justify="left", show_header=False, show_edge=False)
        for key, value in figures.items():
            table.add_row(key, f"{value:,.4g}" if isinstance(value, float) else str(value))
        console.print(table)

    previous = json.loads(args.output.read_text()) if args.output.exists() else {}
    previous.update(results)
    previous["_machine"] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": __import__("os").cpu_count(),
        "quick": args.quick,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.output.write_text(json.dumps(previous, indent=2, sort_keys=True, default=str) + "\n")
    console.print(f"figures written to {args.output}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
