"""Config files: JSON or YAML, flat or nested as a run's ``config.json``, checked by field type."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .fields import coerce, flatten
from .presets import preset_overrides
from .schema import TrainConfig, option_fields


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a JSON or YAML file of options (flat, or nested as in a run's config.json), checked:
    every key must be an option and every value must fit its type and range."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror or e}") from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            loaded = yaml.safe_load(text)
        else:
            loaded = json.loads(text)
    except Exception as e:  # json.JSONDecodeError, yaml.YAMLError
        first = " ".join(str(e).split())[:200]
        raise ConfigError(f"config file {path} is not valid {path.suffix.lstrip('.').upper() or 'JSON'}: {first}") \
            from None
    flat = flatten(loaded if loaded is not None else {}, str(path))
    TrainConfig.from_flat(flat, source=str(path))  # every key, type and range checked now, naming the file
    specs = option_fields()
    return {k: v if k == "preset" else coerce(k, v, specs[k][2], str(path)) for k, v in flat.items()}


def preset_and_file(preset: str | None, config_file: str | Path | None) -> dict[str, Any]:
    """Flat settings from ``--preset`` and then ``--config FILE`` (a ``preset`` key in the file
    applies before the file's other entries); explicit options go on top of this."""
    flat: dict[str, Any] = dict(preset_overrides(preset)) if preset else {}
    if config_file:
        from_file = load_config_file(config_file)
        if "preset" in from_file:
            flat.update(preset_overrides(from_file.pop("preset")))
        flat.update(from_file)
    return flat
