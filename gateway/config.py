"""Loads the one configuration: defaults, then the TOML file, then ``NIMBO_*`` variables."""

from __future__ import annotations

import json
import os
import socket
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gateway.defaults import DEFAULTS
from gateway.errors import ConfigurationError


class Config:
    """Resolved settings, read as attributes (``config.page_max``)."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        unknown = set(values) - set(DEFAULTS)
        if unknown:
            raise ConfigurationError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        merged = {name: s.default for name, s in DEFAULTS.items()}
        for name, value in values.items():
            merged[name] = _coerce(name, value)
        if not merged["host_name"]:
            merged["host_name"] = socket.gethostname()
        if merged["placement_policy"] not in ("packing", "striping"):
            raise ConfigurationError("placement_policy must be 'packing' or 'striping'")
        root = merged["cdmi_root"]
        if not root.startswith("/") or not root.endswith("/") or root == "/" or "//" in root:
            raise ConfigurationError("cdmi_root must be a path like /cdmi/ (not /: OCCI owns it)")
        if merged["network_virtual_switch"] not in ("linux", "openvswitch"):
            raise ConfigurationError("network_virtual_switch must be 'linux' or 'openvswitch'")
        if merged["api_malloc_arenas"] < 0:
            raise ConfigurationError("api_malloc_arenas must be 0 (glibc's default) or more")
        if not 0 <= merged["worker_nice"] <= 19:
            raise ConfigurationError("worker_nice must be in 0..19")
        if not 0 < merged["cdmi_enterprise_number"] < 1 << 24:
            raise ConfigurationError("cdmi_enterprise_number must be in 1..16777215")
        if merged["cdmi_orphan_grace_seconds"] < 60:
            raise ConfigurationError(
                "cdmi_orphan_grace_seconds must be at least 60: a younger "
                "blob may be a new object's value whose write transaction is still running"
            )
        if merged["oidc_issuers"]:  # every trusted issuer valid, no two giving one user name
            from auth.oidc_issuers import issuer_settings

            issuer_settings(merged)
        self._values = merged

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def replace(self, **changes: Any) -> Config:
        """A copy with some settings changed (used by the CLI for ``--data-dir`` and friends)."""
        return Config({**self._values, **changes})

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_path / 'nimbo.sqlite3'}"

    @property
    def redis_socket(self) -> Path:
        return self.data_path / "redis.sock"

    @property
    def effective_redis_url(self) -> str:
        return self.redis_url or f"unix://{self.redis_socket}"

    @property
    def effective_blob_dir(self) -> Path:
        return Path(self.blob_dir) if self.blob_dir else self.data_path / "blobs"

    @property
    def effective_pool_path(self) -> str:
        return self.storage_pool_path or str(self.data_path / "pool")


def _coerce(name: str, value: Any) -> Any:
    setting = DEFAULTS[name]
    if isinstance(value, setting.type):
        return value
    if isinstance(value, str):
        try:
            if setting.type is bool:
                lowered = value.strip().lower()
                if lowered in ("1", "true", "yes", "on"):
                    return True
                if lowered in ("0", "false", "no", "off", ""):
                    return False
                raise ValueError(value)
            if setting.type is int:
                return int(value)
            if setting.type in (dict, list):
                parsed = json.loads(value)
                if isinstance(parsed, setting.type):
                    return parsed
        except ValueError as exc:
            raise ConfigurationError(
                f"{name}: cannot read {value!r} as {setting.type.__name__}"
            ) from exc
    raise ConfigurationError(f"{name}: expected {setting.type.__name__}, got {value!r}")


def _config_file(environ: Mapping[str, str], data_dir: str) -> Path | None:
    explicit = environ.get("NIMBO_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigurationError(f"NIMBO_CONFIG names {path}, which is not a file")
        return path
    for candidate in (Path(data_dir) / "nimbo.toml", Path("/etc/nimbostratus/nimbo.toml")):
        if candidate.is_file():
            return candidate
    return None


def load_config(
    environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> Config:
    """Resolve the configuration. ``overrides`` (from command-line options) win over everything."""
    env = os.environ if environ is None else environ
    overrides = dict(overrides or {})
    from_env = {
        name: env[f"NIMBO_{name.upper()}"] for name in DEFAULTS if f"NIMBO_{name.upper()}" in env
    }
    data_dir = overrides.get("data_dir") or from_env.get("data_dir") or DEFAULTS["data_dir"].default
    values: dict[str, Any] = {}
    path = _config_file(env, data_dir)
    if path is not None:
        try:
            values.update(tomllib.loads(path.read_text()))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigurationError(f"{path}: {exc}") from exc
    values.update(from_env)
    values.update(overrides)
    return Config(values)
