"""The ``nimbo`` command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click

from gateway.config import Config, load_config
from gateway.errors import NimboError

pass_overrides = click.option(
    "--data-dir",
    envvar="NIMBO_DATA_DIR",
    type=click.Path(file_okay=False),
    help="Data directory of the node (also NIMBO_DATA_DIR).",
)


def _config(data_dir: str | None, **more: Any) -> Config:
    overrides = {k: v for k, v in {"data_dir": data_dir, **more}.items() if v}
    if data_dir:
        overrides["data_dir"] = str(Path(data_dir).resolve())
    return load_config(overrides=overrides)


@click.group()
def main() -> None:
    """nimbostratus: an OCCI 1.2 / CDMI 1.1.1 cloud gateway."""


def _fail(exc: NimboError) -> None:
    raise click.ClickException(exc.message) from exc


@main.command()
@pass_overrides
@click.option("--listen", help="Address:port of the API (default 127.0.0.1:8787).")
def up(data_dir: str | None, listen: str | None) -> None:
    """Start the all-in-one node: redis (unless NIMBO_REDIS_URL), worker and API."""
    from gateway.embedded import start_redis, stop

    try:
        config = _config(data_dir, listen=listen)
        config.data_path.mkdir(parents=True, exist_ok=True)
        children: list[subprocess.Popen[bytes]] = []
        redis_process = None
        if not config.redis_url:
            redis_process = start_redis(config.data_path, config.redis_socket)
        env = _child_env(config)
        _bootstrap(config)
        try:
            children.append(_spawn(["worker", "--host", config.host_name], env))
            children.append(_spawn(["serve"], env))
            click.echo(
                f"nimbostratus up on http://{config.listen}/ "
                f"(data in {config.data_path}; Ctrl-C stops it)"
            )
            _wait(children)
        finally:
            for child in reversed(children):
                stop(child)
            if redis_process is not None:
                stop(redis_process)
    except NimboError as exc:
        _fail(exc)


def _child_env(config: Config) -> dict[str, str]:
    return {
        **os.environ,
        "NIMBO_DATA_DIR": str(config.data_path),
        "NIMBO_REDIS_URL": config.effective_redis_url,
        "NIMBO_DATABASE_URL": config.effective_database_url,
        "NIMBO_LISTEN": config.listen,
        "NIMBO_HOST_NAME": config.host_name,
    }


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", *args], env=env, start_new_session=True
    )


def _wait(children: list[subprocess.Popen[bytes]]) -> None:
    stopping = False

    def _stop(_sig: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    while not stopping:
        for child in children:
            if child.poll() is not None:
                click.echo(
                    f"a nimbo process exited with status {child.returncode}; stopping", err=True
                )
                return
        time.sleep(0.2)
    click.echo("stopping nimbostratus")


def _bootstrap(config: Config) -> None:
    """Schema, and on first start an admin user whose password is written to a 0600 file."""
    from auth.passwords import generate_password, hash_password
    from gateway.store.db import Store
    from gateway.store.models import User

    store = Store(config.effective_database_url)
    store.create_schema()
    secret_file = config.data_path / "admin-password"
    with store.session(write=True) as session:
        if session.get(User, "admin") is None:
            password = generate_password()
            session.add(User(name="admin", password_hash=hash_password(password), is_admin=True))
            fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(password + "\n")
            click.echo(f"created user admin; its password is in {secret_file}")
    store.dispose()


@main.command()
@pass_overrides
@click.option("--listen", help="Address:port of the API.")
def serve(data_dir: str | None, listen: str | None) -> None:
    """Run the API only (gunicorn)."""
    config = _config(data_dir, listen=listen)
    os.environ["NIMBO_DATA_DIR"] = str(config.data_path)
    args = [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        "python:gateway.gunicorn_conf",
        "--workers",
        str(config.api_workers),
        "--bind",
        config.listen,
        "gateway.wsgi:app",
    ]
    os.execv(sys.executable, args)


@main.command()
@pass_overrides
@click.option("--host", "host_name", help="Host name (default: this machine's).")
@click.option("--uri", help="libvirt URI of the host (default: libvirt_uri setting).")
@click.option("--burst", is_flag=True, help="Run queued jobs, then exit.")
def worker(data_dir: str | None, host_name: str | None, uri: str | None, burst: bool) -> None:
    """Run the worker of one hypervisor host."""
    from gateway.worker import run_worker

    try:
        config = _config(data_dir, host_name=host_name)
        run_worker(config, config.host_name, uri or config.libvirt_uri, burst=burst)
    except NimboError as exc:
        _fail(exc)


@main.group()
def users() -> None:
    """Local user accounts."""


@users.command("add")
@pass_overrides
@click.argument("name")
@click.option("--admin", is_flag=True, help="Give the user administrator rights.")
def users_add(data_dir: str | None, name: str, admin: bool) -> None:
    """Add user NAME; the password is read from standard input."""
    from auth.passwords import hash_password
    from gateway.store.db import Store
    from gateway.store.models import User

    password = sys.stdin.readline().rstrip("\n")
    if len(password) < 8:
        raise click.ClickException("the password (read from stdin) needs at least 8 characters")
    config = _config(data_dir)
    store = Store(config.effective_database_url)
    store.create_schema()
    with store.session(write=True) as session:
        if session.get(User, name) is not None:
            raise click.ClickException(f"user {name} exists already")
        session.add(User(name=name, password_hash=hash_password(password), is_admin=admin))
    click.echo(f"user {name} added")


@main.group()
def image() -> None:
    """OS templates (os_tpl)."""


@image.command("add")
@pass_overrides
@click.argument("name")
@click.option("--file", "path", type=click.Path(dir_okay=False), help="Local image file.")
@click.option("--url", help="URL of the image.")
@click.option("--title", default="", help="Title shown to clients.")
@click.option("--checksum", help="sha256:HEX, verified for --file.")
def image_add(
    data_dir: str | None,
    name: str,
    path: str | None,
    url: str | None,
    title: str,
    checksum: str | None,
) -> None:
    """Register image NAME as an os_tpl."""
    from gateway.services.mixins import register_image
    from gateway.store.db import Store

    if bool(path) == bool(url):
        raise click.ClickException("give exactly one of --file and --url")
    config = _config(data_dir)
    store = Store(config.effective_database_url)
    store.create_schema()
    try:
        registered = register_image(store, name, path or str(url), title=title, checksum=checksum)
    except NimboError as exc:
        _fail(exc)
    click.echo(f"image {registered.term} registered ({registered.checksum or 'no checksum'})")


if __name__ == "__main__":
    main()
