"""The folder tree is the architecture: imports point one way (cli -> features -> core), no module
reaches into another's private names or imports the package ``__init__``, and files stay small."""

from __future__ import annotations

import ast
from pathlib import Path

import pix2pix

SRC = Path(pix2pix.__file__).parent
# Lower layers never import higher ones. Within the core, models import only config and errors.
LAYERS = {"core": 0, "training": 1, "deploy": 2, "evaluate": 3, "quickstart": 4, "cli": 5, "__init__": 6,
          "__main__": 6}
CORE = ("config", "errors", "fileio", "devices", "_version", "models", "data", "pictures", "pages")


def modules() -> dict[str, Path]:
    """Module name (relative to the package; a package by its folder) -> file."""
    out = {}
    for p in SRC.rglob("*.py"):
        parts = p.relative_to(SRC).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)] = p
    return out


def layer(name: str) -> int:
    top = name.split(".")[0]
    return LAYERS["core"] if top in CORE else LAYERS[top]


def imports(name: str, path: Path) -> list[tuple[str, list[str], int]]:
    """(imported pix2pix module, names taken from it, line) for every import in the file, lazy ones too."""
    package = name.split(".")[:-1] if path.name != "__init__.py" else name.split(".")
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.split(".")[0] == "pix2pix":
                target = node.module.removeprefix("pix2pix").lstrip(".")
            else:
                continue
            found.append((target, [a.name for a in node.names], node.lineno))
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "pix2pix":
                    found.append((a.name.removeprefix("pix2pix").lstrip("."), [], node.lineno))
    return found


def test_imports_point_down():
    mods = modules()
    wrong = []
    for name, path in mods.items():
        for target, names, line in imports(name, path):
            # `from . import x` imports the submodule x: judge x, not the package
            targets = [f"{target}.{n}" if f"{target}.{n}".strip(".") in mods else target for n in names] or [target]
            for t in targets:
                t = t.strip(".")
                if not t:
                    wrong.append(f"{name}:{line} imports the package __init__")
                    continue
                if layer(t) > layer(name):
                    wrong.append(f"{name}:{line} imports {t} (a higher layer)")
                if name.startswith("models.") and t.split(".")[0] not in ("models", "config", "errors"):
                    wrong.append(f"{name}:{line} imports {t} (models import only config and errors)")
    assert not wrong, "\n".join(wrong)


def test_training_does_not_reach_deploy_or_evaluate():
    for name, path in modules().items():
        if name.startswith("training"):
            assert not [t for t, _, _ in imports(name, path) if t.startswith(("deploy", "evaluate"))], name


def test_no_module_uses_another_modules_private_names():
    mods = modules()
    wrong = [f"{name}:{line} takes {n} from {target}" for name, path in mods.items()
             for target, names, line in imports(name, path) for n in names
             if n.startswith("_") and n != "__version__" and target != name]
    assert not wrong, "\n".join(wrong)


def test_files_and_classes_stay_small():
    too_long = []
    for name, path in modules().items():
        text = path.read_text()
        if text.count("\n") > 400:
            too_long.append(f"{name}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno > 220:
                too_long.append(f"{name}.{node.name}: {node.end_lineno - node.lineno} lines")
    assert not too_long, "\n".join(too_long)
