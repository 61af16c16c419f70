"""The layout holds: core at the bottom, each domain importing only the domains below it, and
inside a domain no module above the routers' reach importing a router."""

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app"

# A domain may import core and the domains of lower layers (and itself), never a higher one.
LAYERS = {
    "core": 0,
    "actions": 1,
    "audits": 1,
    "ops": 1,
    "tenants": 2,
    "stats": 2,
    "retention": 3,
    # the stream's event log sits between core and the domains that write to it
    "streamlog": 0.5,
    "streams": 3,
    "alerts": 3,
    "compat": 4,
    "apidocs": 1,
    "timeline": 2,
    "console": 4,
    "offboarding": 4,
    "otel": 2,
    "proofs": 3,
    # delivers the stream with the alerts' webhook signing and address policy
    "destinations": 3.5,
    "action_schemas": 1,
    # the embedded console builds on the console (its cookie signer, templates)
    "viewer": 5,
    # personal fields sealed per data subject: audits seal and open their rows through it
    "subjects": 0.7,
}
TOP_LEVEL = {"main", "cli", "demo", "models"}  # the application's assembly: may import anything


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return {name for name in found if name == "app" or name.startswith("app.")}


def app_modules() -> list[tuple[str, Path]]:
    return [
        (".".join(path.relative_to(APP.parent).with_suffix("").parts), path)
        for path in sorted(APP.rglob("*.py"))
    ]


def test_every_domain_has_a_layer() -> None:
    domains = {path.parent.name for _, path in app_modules() if path.parent != APP}
    assert domains <= LAYERS.keys(), f"place new domains in LAYERS: {domains - LAYERS.keys()}"


def test_domains_import_only_lower_layers() -> None:
    wrong = []
    for module, path in app_modules():
        parts = module.split(".")
        if len(parts) < 3 or parts[1] in TOP_LEVEL:
            continue
        domain = parts[1]
        for imported in imported_modules(path):
            target = imported.split(".")[1] if "." in imported else None
            if target is None or target in TOP_LEVEL:
                if target in TOP_LEVEL:
                    wrong.append(f"{module} imports {imported}")
                continue
            if target != domain and LAYERS[target] >= LAYERS[domain]:
                wrong.append(f"{module} imports {imported}")
    assert wrong == []


def test_only_the_application_imports_routers() -> None:
    wrong = [
        f"{module} imports {imported}"
        for module, path in app_modules()
        if not module.endswith(".router") and module.split(".")[1] not in TOP_LEVEL
        for imported in imported_modules(path)
        if imported.endswith(".router")
    ]
    assert wrong == []
