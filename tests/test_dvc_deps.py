"""dvc.yaml's code dependencies follow the imports: a stage reruns when code it runs changes.

For each stage the check finds the ``synthdata`` command it runs, the function ``cli.py``
registers for that command, and every synthdata module that function imports, directly or
through other synthdata modules (function-level imports included). Each of those files must lie
under one of the stage's ``deps`` (a folder covers every file below it), and every code dep must
exist. Nothing here lists which stage needs what: that is read from the imports, so code moved
between modules is checked as it is. The only list is :data:`EXEMPT`, the infrastructure no
stage needs to declare, each entry with its reason.
"""

from __future__ import annotations

import ast
import shlex
from dataclasses import replace
from functools import cache
from pathlib import Path

import pytest
import yaml
from conftest import REPO

from synthdata.pipeline import Stage, stages

PACKAGE = "synthdata"
CLI = REPO / PACKAGE / "cli.py"

EXEMPT = {
    # Infrastructure every stage uses, which decides how a file is written, an error worded, a
    # lock taken or progress shown, never what a stage computes: listing it would only rerun
    # the whole pipeline for each change of it.
    "synthdata/atomic.py": "writes that land whole or not at all",
    "synthdata/errors.py": "the exception classes",
    "synthdata/faults.py": "fault points for the kill tests (inactive unless a test sets one)",
    "synthdata/hashing.py": "sha256 of files and bytes",
    "synthdata/locking.py": "one writer per output folder",
    "synthdata/paths.py": "name checks and the input/output overlap guard",
    "synthdata/progress.py": "progress bars",
    # The strict builder and range checks decide which settings a recipe may give, never what a
    # stage computes with them (the defaults live beside each library's code, which is followed).
    "synthdata/settings.py": "strict settings checks",
    # Provenance stamps (version, git commit, package versions, hardware) differ between any two
    # commits by design; no dependency declaration could follow them.
    "synthdata/__init__.py": "the version string, part of the provenance stamp",
    "synthdata/provenance.py": "who made an artifact and on what",
    # MLflow records each run beside the pipeline; no output dvc.yaml declares depends on it.
    "synthdata/tracking/": "MLflow runs",
    # The command line parses options; what a stage computes lies in the modules its command
    # imports, which are checked. Listing cli.py would rerun every stage for one command's help.
    "synthdata/cli.py": "option parsing",
    # The recipe loader assembles every stage's settings, so it imports every library that owns
    # some; following it would make each stage depend on all of synthdata. A stage's own recipe
    # section is declared under `params`, and its settings' defaults live beside the library
    # code the stage imports itself. Not followed, unlike the entries above.
    "synthdata/config/": "the recipe loader",
}
NOT_FOLLOWED = ("synthdata/config/",)


def _exempt(path: str) -> bool:
    return any(path == entry or (entry.endswith("/") and path.startswith(entry)) for entry in EXEMPT)


def _module_file(name: str) -> Path | None:
    """``synthdata.a.b`` -> ``synthdata/a/b.py`` or ``synthdata/a/b/__init__.py``; None when
    ``name`` is not a module (a function or class imported from one)."""
    base = REPO.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported(node: ast.AST, package: str) -> set[str]:
    """Every synthdata module imported anywhere under ``node`` (``package``: the importing
    module's package, for relative imports)."""
    names: set[str] = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Import):
            names |= {alias.name for alias in child.names}
        elif isinstance(child, ast.ImportFrom):
            anchor = [package.rsplit(".", child.level - 1)[0]] if child.level else []
            base = ".".join([*anchor, *([child.module] if child.module else [])])
            names.add(base)
            names |= {f"{base}.{alias.name}" for alias in child.names if _module_file(f"{base}.{alias.name}")}
    return {name for name in names if name.split(".")[0] == PACKAGE and _module_file(name)}


@cache
def _imports_of(module: str) -> frozenset[str]:
    """The synthdata modules ``module``'s file imports, at its top or in any function."""
    path = _module_file(module)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    return frozenset(_imported(ast.parse(path.read_text()), package))


def _has_code(path: Path) -> bool:
    """False for a module that is only a docstring (most package ``__init__`` files)."""
    body = ast.parse(path.read_text()).body
    return not all(isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant) for s in body)


def _relative(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def closure(roots: set[str]) -> set[str]:
    """Files (relative to the repository) of ``roots`` and of everything they import, with the
    packages above each (Python runs their ``__init__``); not through :data:`NOT_FOLLOWED`."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        parts = todo.pop().split(".")
        for depth in range(1, len(parts) + 1):
            module = ".".join(parts[:depth])
            if module in seen:
                continue
            seen.add(module)
            if not _relative(_module_file(module)).startswith(NOT_FOLLOWED):
                todo.extend(_imports_of(module))
    return {_relative(_module_file(module)) for module in seen}


def _commands() -> dict[tuple[str, ...], ast.FunctionDef]:
    """``cli.py``'s functions by command words, e.g. ``("data", "ingest")``, read from its typer
    decorators (``@app.command("finetune")``) and sub-apps (``app.add_typer(data_app, name="data")``)."""
    tree = ast.parse(CLI.read_text())
    groups = {"app": ()}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_typer":
            name = next(k.value.value for k in node.keywords if k.arg == "name")
            groups[node.args[0].id] = (name,)
    out = {}
    for function in tree.body:
        for decorator in getattr(function, "decorator_list", []):
            if isinstance(decorator, ast.Call) and getattr(decorator.func, "attr", None) == "command":
                name = decorator.args[0].value if decorator.args else function.name.replace("_", "-")
                out[(*groups[decorator.func.value.id], name)] = function
    return out


def _cli_imports(function: ast.FunctionDef) -> set[str]:
    """Modules ``function`` imports, and those of the ``cli.py`` helpers it calls."""
    helpers = {f.name: f for f in ast.parse(CLI.read_text()).body if isinstance(f, ast.FunctionDef)}
    seen, todo, modules = set(), [function], set()
    while todo:
        current = todo.pop()
        modules |= _imported(current, PACKAGE)
        called = {c.func.id for c in ast.walk(current) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)}
        for name in sorted(called & helpers.keys() - seen):
            seen.add(name)
            todo.append(helpers[name])
    return modules


def stage_code(stage: Stage) -> set[str]:
    """The synthdata files ``stage``'s command runs."""
    words = shlex.split(stage.cmd)
    assert words[0] == PACKAGE, f"stage {stage.name}: not a synthdata command: {stage.cmd}"
    commands = _commands()
    key = next((key for key in commands if tuple(words[1 : 1 + len(key)]) == key), None)
    assert key is not None, f"stage {stage.name}: cli.py has no command for {stage.cmd}"
    return closure(_cli_imports(commands[key]))


def needed(stage: Stage) -> set[str]:
    """The files ``stage``'s deps must cover: what it runs, exempt files and docstring-only
    modules aside."""
    return {path for path in stage_code(stage) if not _exempt(path) and _has_code(REPO / path)}


def _covers(dep: str, path: str) -> bool:
    dep = dep.rstrip("/")
    return path == dep or path.startswith(dep + "/")


def problems(stage: Stage) -> list[str]:
    """What ``stage``'s deps miss: each file it needs that no dep covers, each code dep that
    does not exist."""
    code = [dep for dep in stage.deps if dep.split("/")[0] == PACKAGE]
    out = [f"stage {stage.name}: dep {dep} does not exist" for dep in code if not (REPO / dep).exists()]
    out += [
        f"stage {stage.name}: runs {path}, which no dep in dvc.yaml covers"
        for path in sorted(needed(stage))
        if not any(_covers(dep, path) for dep in code)
    ]
    return out


PIPELINE = stages("pbc", REPO / "dvc.yaml")
"""The stages as ``pbc`` runs them; code deps are the same for every recipe."""


@pytest.mark.parametrize("stage", PIPELINE, ids=lambda s: s.name)
def test_every_module_a_stage_runs_is_a_dependency(stage):
    found = problems(stage)
    assert not found, "\n".join(found)


@pytest.mark.parametrize("stage", PIPELINE, ids=lambda s: s.name)
def test_removing_a_code_dependency_is_caught(stage):
    """Without any one of its code deps that covers a file the stage runs, the check names the
    stage and a file under that dep. (A dep that covers none only costs a needless rerun: it is
    not flagged, so code moving between modules does not fail this test before dvc.yaml follows.)"""
    before = set(problems(stage))
    removable = [dep for dep in stage.deps if any(_covers(dep, path) for path in needed(stage))]
    assert any(dep.startswith("synthdata/stages/") for dep in removable)  # the stage's own module, at least
    for dep in removable:
        found = set(problems(replace(stage, deps=tuple(d for d in stage.deps if d != dep)))) - before
        assert found and all(p.startswith(f"stage {stage.name}: runs {dep}") for p in found), (dep, found)


def test_a_dependency_on_moved_code_is_caught():
    stage = next(s for s in PIPELINE if s.name == "report")
    found = set(problems(replace(stage, deps=(*stage.deps, "synthdata/stages/gone.py")))) - set(problems(stage))
    assert found == {"stage report: dep synthdata/stages/gone.py does not exist"}


def test_imports_are_followed_through_libraries_and_function_bodies():
    """finetune reaches sampling/generate.py through a library (reporting/samples.py); the
    utility stage imports reporting/plots.py inside a function."""
    assert "synthdata/sampling/generate.py" in stage_code(next(s for s in PIPELINE if s.name == "finetune"))
    assert "synthdata/reporting/plots.py" in stage_code(next(s for s in PIPELINE if s.name == "utility"))


def test_the_sections_a_recipe_needs_for_dvc_are_the_ones_dvc_yaml_tracks(tmp_path, monkeypatch, capsys):
    from test_bad_input import run_cli

    from synthdata.config.recipe import PIPELINE_SECTIONS

    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    tracked = {
        section
        for stage in stages.values()
        for entry in stage["do"].get("params", [])
        if isinstance(entry, dict)
        for sections in entry.values()
        for section in sections
    }
    assert tracked == set(PIPELINE_SECTIONS)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: r\ndomain: medical\ndata: {{source: imagefolder, path: {tmp_path}}}\nsample: {{}}\n")
    code, out, _ = run_cli(["recipe", str(recipe)], monkeypatch, capsys)
    assert code == 0 and "also name: longtail: {}, finetune: {}, validate: {}, utility: {}, provenance: {}" in out
    for shipped in sorted((REPO / "recipes").glob("*.yaml")):
        code, out, _ = run_cli(["recipe", str(shipped)], monkeypatch, capsys)
        assert code == 0 and "also name" not in out, shipped
