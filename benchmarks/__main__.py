"""Run the benchmarks: `python -m benchmarks [--quick] [--only NAME ...] [--out DIR]` (`make bench`).

Discovers every `benchmarks/bench_*.py` module, runs each one's `run(quick)` in a fresh interpreter
(so that global OTel state never leaks from one benchmark into the next), and writes
`results.json` (machine, date, versions, and each benchmark's result) and `results.md` (its tables).

- A full run writes into `benchmarks/` (or `--out DIR`); with `--only`, the other benchmarks'
  entries already in `results.json` are kept.
- `--quick` runs tiny sizes (a smoke run, seconds per benchmark) and writes files only with `--out`.
- A benchmark that fails is recorded with its error; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import importlib.metadata
import json
import os
import pkgutil
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
_PREFIX = "bench_"
_TIMEOUT_SECONDS = 900
_PACKAGES = ("mcp", "opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-grpc", "shinzo-otel")


def discover() -> list[str]:
    """Names of the benchmark modules (`bench_*.py` in this package), sorted, without the prefix."""
    return sorted(
        module.name.removeprefix(_PREFIX)
        for module in pkgutil.iter_modules([str(_HERE)])
        if module.name.startswith(_PREFIX)
    )


def _run_one(name: str, quick: bool, result_file: Path) -> None:
    """The child side: import `bench_<name>`, run it, write its result as JSON."""
    module = importlib.import_module(f"benchmarks.{_PREFIX}{name}")
    result = module.run(quick=quick)
    result_file.write_text(json.dumps(result, indent=1, sort_keys=False, default=str))


def _spawn(name: str, quick: bool) -> dict[str, Any]:
    """Run one benchmark in a child interpreter; returns its result, or `{"error": ...}`."""
    with tempfile.TemporaryDirectory(prefix="shinzo-bench-") as tmp:
        result_file = Path(tmp) / "result.json"
        command = [sys.executable, "-m", "benchmarks", "--child", name, "--result-file", str(result_file)]
        if quick:
            command.append("--quick")
        try:
            completed = subprocess.run(
                command,
                cwd=_HERE.parent,
                capture_output=True,
                text=True,
                timeout=_TIMEOUT_SECONDS,
            )
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {_TIMEOUT_SECONDS} s"}
        if completed.returncode != 0 or not result_file.exists():
            return {"error": f"exit status {completed.returncode}: {completed.stderr[-3000:]}"}
        result: dict[str, Any] = json.loads(result_file.read_text())
        return result


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in _PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def _machine() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
    }


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".") if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value).replace("|", "\\|")


def _markdown_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows]
    return lines


def render_markdown(document: dict[str, Any]) -> str:
    """`results.md` from a `results.json` document: a header, then each benchmark's tables and notes."""
    meta = document["meta"]
    versions = ", ".join(f"{name} {version}" for name, version in meta["versions"].items())
    lines = [
        "# shinzo_otel benchmark results",
        "",
        f"- Date: {meta['date']}{' (quick run: tiny sizes, figures meaningless)' if meta['quick'] else ''}",
        f"- Machine: {meta['machine']['cpu_count']} cores, {meta['machine']['platform']}",
        f"- Versions: {versions}",
        "- Reproduce: `make bench` (or `.venv/bin/python -m benchmarks`); see `benchmarks/README.md`.",
    ]
    for name, result in document["benchmarks"].items():
        seconds = meta.get("seconds", {}).get(name)
        lines += ["", f"## {name}" + (f" ({seconds:.0f} s)" if seconds is not None else ""), ""]
        if "error" in result:
            lines += ["**failed**:", "", "```", str(result["error"]).strip(), "```"]
            continue
        tables = result.get("tables") or []
        if not tables:
            scalars = [[key, value] for key, value in result.items() if not isinstance(value, dict | list)]
            tables = [{"title": "", "columns": ["key", "value"], "rows": scalars}]
        for entry in tables:
            if entry.get("title"):
                lines += [f"**{entry['title']}**", ""]
            lines += [*_markdown_table(entry["columns"], entry["rows"]), ""]
        lines += [f"- {note}" for note in result.get("notes") or []]
    return "\n".join(lines).rstrip() + "\n"


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke run)")
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help="run only this benchmark (repeatable): " + ", ".join(discover()),
    )
    parser.add_argument("--out", type=Path, help="directory for results.json and results.md")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--result-file", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """The runner's entry point; returns the exit status (1 when a benchmark failed)."""
    args = _parse(sys.argv[1:] if argv is None else argv)
    if args.child:
        _run_one(args.child, args.quick, args.result_file)
        return 0
    available = discover()
    selected = [name.removeprefix(_PREFIX) for name in args.only] if args.only else available
    unknown = sorted(set(selected) - set(available))
    if unknown:
        print(
            f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available)}", file=sys.stderr
        )
        return 2
    out: Path | None = args.out if args.out is not None else (None if args.quick else _HERE)
    previous: dict[str, Any] = {}
    if out is not None and args.only and (out / "results.json").exists():
        previous = json.loads((out / "results.json").read_text())
    results: dict[str, Any] = dict(previous.get("benchmarks", {}))
    seconds: dict[str, float] = dict(previous.get("meta", {}).get("seconds", {}))
    for name in selected:
        print(f"[benchmarks] {name} ...", file=sys.stderr, flush=True)
        started = time.monotonic()
        results[name] = _spawn(name, args.quick)
        seconds[name] = round(time.monotonic() - started, 1)
        status = "FAILED" if "error" in results[name] else "done"
        print(f"[benchmarks] {name} {status} in {seconds[name]:.0f} s", file=sys.stderr, flush=True)
    document = {
        "meta": {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "quick": args.quick,
            "machine": _machine(),
            "versions": _versions(),
            "seconds": seconds,
        },
        "benchmarks": {name: results[name] for name in sorted(results)},
    }
    markdown = render_markdown(document)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")
        (out / "results.md").write_text(markdown)
    print(markdown)
    return 1 if any("error" in results[name] for name in selected) else 0


if __name__ == "__main__":
    sys.exit(main())
