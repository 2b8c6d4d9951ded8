"""Helpers shared by the experiment configs: required values, variants and validation.

Configs are `ml_collections.ConfigDict`s returned by `get_config(arg)` in `configs/*.py` and locked
before use, so a misspelt override fails at start-up. A value the user must supply is declared with
`required(type)`; `validate(config)` names every one still missing.
"""

from typing import Any, Iterable

from ml_collections import config_dict


class ConfigError(ValueError):
  """A configuration problem the user can fix from the command line."""


class _Required(config_dict.FieldReference):
  """A typed placeholder that must be set before the run starts."""


def required(field_type: type) -> config_dict.FieldReference:
  """A typed value the user must provide, e.g. `--config.data.path=...`."""
  return _Required(None, field_type=field_type)


def parse_variant(arg: str | None, variants: Iterable[str], default: str = "cpu") -> str:
  """Returns the variant named by the `:arg` suffix of `--config`, checking it exists."""
  variants = tuple(variants)
  arg = default if arg in (None, "") else arg
  if arg not in variants:
    raise ConfigError(f"Unknown config variant {arg!r}; choose one of {', '.join(variants)}.")
  return arg


def missing_required(config: config_dict.ConfigDict, prefix: str = "") -> list[str]:
  """Dotted names of all `required()` fields still unset."""
  missing = []
  for key, value in config._fields.items():  # pylint: disable=protected-access
    name = f"{prefix}{key}"
    if isinstance(value, _Required) and value.get() is None:
      missing.append(name)
    elif isinstance(value, config_dict.ConfigDict):
      missing.extend(missing_required(value, prefix=f"{name}."))
  return missing


def validate(config: config_dict.ConfigDict) -> None:
  """Raises ConfigError naming any required value not provided."""
  missing = missing_required(config)
  if missing:
    flags = " ".join(f"--config.{m}=..." for m in missing)
    raise ConfigError(f"Missing required config value(s): {', '.join(missing)}. Set them with {flags}")


def to_dict(config: config_dict.ConfigDict) -> dict[str, Any]:
  """A plain JSON-friendly dict of the config (for writing next to the results)."""
  return config.to_dict()


def load_config(spec: str) -> config_dict.ConfigDict:
  """Loads `path/to/config.py[:variant]` like `--config` does, locked (for tests and notebooks)."""
  import importlib.util  # pylint: disable=g-import-not-at-top
  path, _, arg = spec.partition(":")
  module_spec = importlib.util.spec_from_file_location("_metanas_config", path)
  if module_spec is None:
    raise ConfigError(f"Cannot load config file {path!r}.")
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  config = module.get_config(arg or None)
  config.lock()
  return config
