"""Every service has one shape (docs/DEVELOPING.md): a newcomer finds the entrypoints, the
rules, the queries, the contract's shapes and the tables by file name alone."""
from __future__ import annotations

from pathlib import Path

SERVICES = Path(__file__).resolve().parents[2] / "services"
NOT_A_SERVICE = {"kit", "__pycache__"}  # the shared kernel has its own layout


def service_folders() -> list[Path]:
    return sorted(p for p in SERVICES.iterdir()
                  if p.is_dir() and p.name not in NOT_A_SERVICE and (p / "__init__.py").exists())


def missing(folder: Path) -> list[str]:
    """The layout's files this folder lacks (domain and store: a module or a package)."""
    wanted = {
        "service.py": (folder / "service.py").is_file(),
        "domain.py or domain/": ((folder / "domain.py").is_file()
                                 or (folder / "domain" / "__init__.py").is_file()),
        "store.py or store/": ((folder / "store.py").is_file()
                               or (folder / "store" / "__init__.py").is_file()),
        "schemas.py": (folder / "schemas.py").is_file(),
        "models.py": (folder / "models.py").is_file(),
        "migrations/versions/": (folder / "migrations" / "versions").is_dir(),
        "README.md": (folder / "README.md").is_file(),
    }
    return [name for name, present in wanted.items() if not present]


def test_every_service_folder_has_the_same_files():
    folders = service_folders()
    assert {f.name for f in folders} >= {"clients", "deals", "payments", "notifications"}
    assert {f.name: missing(f) for f in folders if missing(f)} == {}


def test_a_missing_file_is_named(tmp_path):
    (tmp_path / "domain").mkdir()
    (tmp_path / "domain" / "__init__.py").write_text("")
    for name in ("service.py", "store.py", "models.py", "README.md"):
        (tmp_path / name).write_text("")
    assert missing(tmp_path) == ["schemas.py", "migrations/versions/"]
