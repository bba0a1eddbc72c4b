"""The layout's one rule: a module imports only from the floors below its own (docs/architecture.md, "Floors").

Reads every import in newsletter/ with ast, so an arrow that points up or sideways fails here, naming the file.
"""
import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "newsletter"


def floors() -> list[list[str]]:
    """The rooms on each floor, top first, as docs/architecture.md lists them in its `floors` block."""
    doc = (ROOT / "docs" / "architecture.md").read_text()
    block = re.search(r"```floors\n(.*?)```", doc, re.S)
    assert block, "docs/architecture.md has no ```floors block"
    return [line.split() for line in block.group(1).splitlines() if line.strip()]


def room_of(module: str) -> str:
    """`newsletter.inquiries.booking` -> `inquiries`; `newsletter` itself -> `__init__`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports(path: Path) -> list[tuple[str, int]]:
    """Every newsletter module `path` imports (top-level or inside a function), with its line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "newsletter":
            if node.module == "newsletter":
                found += [(f"newsletter.{alias.name}", node.lineno) for alias in node.names]
            else:
                found.append((node.module, node.lineno))
        elif isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names if alias.name.split(".")[0] == "newsletter"]
    return found


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_every_room_is_on_a_floor():
    listed = {room for floor in floors() for room in floor}
    rooms = {room_of(module_name(path)) for path in PACKAGE.rglob("*.py")}
    assert rooms - listed == set(), "rooms missing from the floors in docs/architecture.md"
    assert listed - rooms == set(), "docs/architecture.md lists rooms that do not exist"


def test_no_import_points_up_or_sideways():
    level = {room: index for index, floor in enumerate(floors()) for room in floor}
    arrows = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = room_of(module_name(path))
        for target_module, line in imports(path):
            target = room_of(target_module)
            if target != source and level[target] <= level[source]:
                arrows.append(f"{path.relative_to(ROOT)}:{line} imports {target_module} "
                              f"({source} is on floor {level[source]}, {target} on {level[target]})")
    assert arrows == []


def test_the_app_never_imports_the_worker_entry_point():
    """Only worker/ builds the Celery app from create_app; the app hands off through newsletter.tasks."""
    offenders = [f"{path.relative_to(ROOT)}:{line}" for path in PACKAGE.rglob("*.py")
                 for node in ast.walk(ast.parse(path.read_text()))
                 if isinstance(node, (ast.Import, ast.ImportFrom))
                 for line in [node.lineno]
                 if any(name.split(".")[0] == "worker" for name in
                        ([node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]))]
    assert offenders == []


def test_no_test_file_imports_another():
    """Shared helpers live in tests/helpers.py, relays.py and support.py, fixtures in conftest.py: one way in."""
    tests = ROOT / "tests"
    offenders = [f"{path.relative_to(ROOT)}:{node.lineno} imports {node.module}"
                 for path in sorted(tests.rglob("*.py"))
                 for node in ast.walk(ast.parse(path.read_text()))
                 if isinstance(node, ast.ImportFrom) and node.module
                 and node.module.split(".")[-1].startswith(("test_", "conftest"))]
    assert offenders == []


# -- rooms a newcomer reads on one screen: no module over MODULE_LINES, no function over FUNCTION_LINES

MODULE_LINES, FUNCTION_LINES = 450, 50


def kept_long() -> set[str]:
    """What docs/architecture.md (its ```kept-long block) lets stay longer, each with its reason:
    `path` for a module, `path:function` for a function."""
    block = re.search(r"```kept-long\n(.*?)```", (ROOT / "docs" / "architecture.md").read_text(), re.S)
    lines = block.group(1).splitlines() if block else []
    return {line.split()[0] for line in lines if line.strip() and not line.startswith("#")}


def too_long() -> set[str]:
    """Every app module (newsletter/, worker/) over MODULE_LINES and function (from its def) over FUNCTION_LINES."""
    found = set()
    for path in sorted([*PACKAGE.rglob("*.py"), *(ROOT / "worker").rglob("*.py")]):
        name, source = str(path.relative_to(ROOT)), path.read_text()
        if len(source.splitlines()) > MODULE_LINES:
            found.add(name)
        found |= {f"{name}:{node.name}" for node in ast.walk(ast.parse(source, name))
                  if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.end_lineno - node.lineno + 1 > FUNCTION_LINES}
    return found


def test_no_module_or_function_grows_past_a_screen_unless_the_docs_say_why():
    long, kept = too_long(), kept_long()
    assert long - kept == set(), (f"shorten these (modules over {MODULE_LINES} lines, functions over "
                                  f"{FUNCTION_LINES}), or say why in docs/architecture.md's kept-long block")
    assert kept - long == set(), "docs/architecture.md keeps as long what is short now: take it off the list"


# Libraries a sending worker never needs, each a few MB a process (docs/performance.md): the code that uses one
# imports it where it runs (the blog feed's poll, the .ics, premailer for transactional mail, photos, Fernet).
NOT_AT_START = ("requests", "feedparser", "icalendar", "premailer", "PIL", "cryptography.fernet", "flask_migrate")


def test_a_worker_starts_without_the_libraries_only_some_tasks_use():
    probe = ("import sys; from worker.celery import app; import newsletter.tasks; "
             f"print(' '.join(m for m in {NOT_AT_START!r} if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}).stdout.split()
    assert loaded == [], f"a worker imports {loaded} at start: import it inside the function that uses it"
