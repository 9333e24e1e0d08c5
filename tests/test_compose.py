"""docker-compose.yml is valid (checked by `docker compose config` where the client has compose)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
ENV = {"POSTGRES_PASSWORD": "p", "COASSESS_BOT_TOKEN": "1:x", "COASSESS_WEBHOOK_SECRET": "s",
       "COASSESS_PSEUDONYM_KEY": "k", "COASSESS_CONTACT_KEY": "c", "COASSESS_PUBLIC_URL": "https://x",
       "COASSESS_WEB_PUBLIC_URL": "https://console.x", "COASSESS_WEB_SECRET": "w"}


def test_compose_file_has_every_service_and_healthcheck() -> None:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = data["services"]
    assert set(services) == {"postgres", "redis", "migrate", "bot", "web"}
    for name in ("postgres", "redis", "bot", "web"):
        assert "healthcheck" in services[name]
    assert services["bot"]["command"][0] == "webhook"
    env = services["bot"]["environment"]
    for var in ("COASSESS_DATABASE_URL", "COASSESS_REDIS_URL", "COASSESS_WEBHOOK_SECRET", "COASSESS_PSEUDONYM_KEY"):
        assert var in env
    web = services["web"]
    assert web["command"][0] == "web"
    for var in ("COASSESS_DATABASE_URL", "COASSESS_PSEUDONYM_KEY", "COASSESS_BOT_TOKEN", "COASSESS_WEB_SECRET",
                "COASSESS_WEB_PUBLIC_URL"):
        assert var in web["environment"]  # the same database and keys as the bot


def _compose() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_docker_compose_config_validates() -> None:
    compose = _compose()
    if compose is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed here")
    proc = subprocess.run([*compose, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
                          capture_output=True, text=True, env={**os.environ, **ENV}, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    missing = subprocess.run([*compose, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
                             capture_output=True, text=True, cwd=ROOT,
                             env={k: v for k, v in os.environ.items() if k not in ENV})
    assert missing.returncode != 0  # a missing secret is refused, not silently empty
