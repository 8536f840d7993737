"""The layer order of `shinzo_otel._layers`, checked on the source: every import of every module is
read with `ast` (nothing is imported or run) and must stay in its layer or go down.

One subprocess test then checks the outcome that matters at run time: loading the embedded store's
exporter, as the instrumentation does, loads neither the read side nor rich, typer or httpx.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shinzo_otel._layers import LAYERS, READ_LAYER, READ_SIDE_LIBRARIES
from shinzo_otel.store import SessionStore

PACKAGE = Path(__file__).resolve().parent.parent / "shinzo_otel"
LAYER_OF = {module: index for index, (_, modules) in enumerate(LAYERS) for module in modules}
NAMES = [name for name, _ in LAYERS]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _run_time_imports(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement under `node`, in functions too, but not under `if TYPE_CHECKING:`."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child
        elif isinstance(child, ast.If) and _is_type_checking(child):
            for statement in child.orelse:
                yield from _run_time_imports(ast.Module(body=[statement], type_ignores=[]))
        else:
            yield from _run_time_imports(child)


def _with_packages(module: str) -> set[str]:
    """`module` and every package above it: importing `a.b.c` runs `a` and `a.b` first."""
    parts = module.split(".")
    return {".".join(parts[:end]) for end in range(1, len(parts) + 1)}


def imports_of(module: str) -> tuple[set[str], set[str]]:
    """(modules of the package, top-level third-party packages) that `module` imports at run time,
    with the packages those imports (and the module itself) run first."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    ours: set[str] = set()
    others: set[str] = set()
    for node in _run_time_imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from a import b` imports the module a.b when there is one, else a name of a.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names
            ]
        for target in targets:
            if target.split(".")[0] == "shinzo_otel":
                ours |= _with_packages(target)
            else:
                others.add(target.split(".")[0])
    return ours | _with_packages(module) - {module}, others


def test_every_module_is_in_exactly_one_layer() -> None:
    listed = [module for _, modules in LAYERS for module in modules]
    assert len(listed) == len(set(listed)), "a module is listed twice in shinzo_otel/_layers.py"
    missing = sorted(set(MODULES) - set(listed))
    gone = sorted(set(listed) - set(MODULES))
    assert (missing, gone) == ([], []), (
        f"shinzo_otel/_layers.py: add {missing} to the lowest layer their imports allow; remove {gone}"
    )


@pytest.mark.parametrize("module", sorted(set(MODULES) & set(LAYER_OF)))
def test_no_module_imports_a_layer_above_its_own(module: str) -> None:
    ours, others = imports_of(module)
    layer = LAYER_OF[module]
    upward = sorted(
        f"{target} ({NAMES[LAYER_OF[target]]})"
        for target in ours
        if target in LAYER_OF and LAYER_OF[target] > layer
    )
    assert upward == [], f"{module} ({NAMES[layer]}) imports a layer above its own: {upward}"
    if layer < NAMES.index(READ_LAYER):
        read_side = sorted(others & set(READ_SIDE_LIBRARIES))
        assert read_side == [], f"{module} ({NAMES[layer]}) imports read-side libraries {read_side}"


def test_the_checker_sees_upward_imports() -> None:
    """The parser must find imports wherever they run: at top level, in a function, in `try`, as
    `from package import module`; and not under `if TYPE_CHECKING:`."""
    # Known facts of the code base: the CLI imports the tracking server inside `serve`, the exporter
    # factory imports the store's writer inside a function, the package root imports only lazily.
    assert "shinzo_otel.admin.server" in imports_of("shinzo_otel.cli")[0]
    assert "shinzo_otel._store_writer" in imports_of("shinzo_otel._export")[0]
    assert imports_of("shinzo_otel")[0] == set()
    assert {"shinzo_otel.replay", "shinzo_otel.replay.model"} <= imports_of("shinzo_otel._store_schema")[0]
    assert (
        "shinzo_otel._semconv" in imports_of("shinzo_otel.admin.server")[0]
    )  # from shinzo_otel import _semconv
    assert "rich" in imports_of("shinzo_otel.replay.render")[1]


def test_the_exporter_loads_no_read_side(tmp_path: Path) -> None:
    """What exporting to the embedded store loads, in a fresh interpreter: the export pipeline and the
    store's writer, exporting one request outside any session."""
    script = (
        "import json, sys\n"
        "import shinzo_otel._export, shinzo_otel.processor\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "from opentelemetry.sdk.trace.export import SimpleSpanProcessor\n"
        "from opentelemetry.trace import SpanKind\n"
        "from shinzo_otel._store_writer import SqliteSpanExporter\n"
        "provider = TracerProvider()\n"
        "provider.add_span_processor(SimpleSpanProcessor(SqliteSpanExporter(sys.argv[1])))\n"
        "attributes = {'mcp.method.name': 'tools/list'}\n"
        "tracer = provider.get_tracer('t')\n"
        "tracer.start_span('tools/list', kind=SpanKind.SERVER, attributes=attributes).end()\n"
        "provider.shutdown()\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    store = tmp_path / "sessions.db"
    result = subprocess.run(
        [sys.executable, "-c", script, str(store)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    with SessionStore(store) as reader:
        assert [request.method for request in reader.list_requests()] == ["tools/list"]
    loaded = set(json.loads(result.stdout))
    read_side = {
        module
        for module in loaded
        if module.split(".")[0] in READ_SIDE_LIBRARIES or LAYER_OF.get(module, 0) >= NAMES.index(READ_LAYER)
    }
    assert read_side == set()
