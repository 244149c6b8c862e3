"""Service configuration: a YAML file with ``${VAR:default}`` placeholders.

Values come from the environment at load time, so the same file serves `make run`,
docker-compose and tests; secrets live only in the environment.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

_PLACEHOLDER = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::(?P<default>[^}]*))?\}")


class ConfigError(Exception):
    pass


def expand(text: str, env: Mapping[str, str] | None = None) -> str:
    values: Mapping[str, str] = os.environ if env is None else env

    def replace(match: re.Match[str]) -> str:
        name, default = match.group("name"), match.group("default")
        if name in values:
            return values[name]
        if default is None:
            raise ConfigError(f"environment variable {name} is required by the configuration")
        return default

    return _PLACEHOLDER.sub(replace, text)


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Read YAML after expanding placeholders; a whole-value placeholder keeps YAML typing
    (``PORT: ${PORT:8000}`` gives an int)."""
    text = Path(path).read_text(encoding="utf-8")
    data = yaml.safe_load(expand(text, env))
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the configuration must be a mapping")
    return data


ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("clients", "deals", "payments", "notifications", "telephony", "documents",
            "intake", "analytics")
COMPONENTS = (*SERVICES, "gateway")


def load_component_config(name: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """deploy/config/common.yaml overlaid with deploy/config/<name>.yaml."""
    folder = Path((env or os.environ).get("CRM_CONFIG_DIR", ROOT / "deploy" / "config"))
    return {**load_config(folder / "common.yaml", env), **load_config(folder / f"{name}.yaml", env)}
