"""The ``nimbo`` command."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

from gateway.config import Config, load_config
from gateway.errors import NimboError

if TYPE_CHECKING:
    from gateway.services.cdmi_sweep import SweepReport
    from gateway.store.db import Store

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


@contextmanager
def _store(config: Config) -> Iterator[Store]:
    """The node's store, its schema made, disposed of however the command ends."""
    from gateway.store.db import Store

    store = Store(config.effective_database_url)
    try:
        store.create_schema()
        yield store
    finally:
        store.dispose()


@click.group()
def main() -> None:
    """nimbostratus: an OCCI 1.2 / CDMI 1.1.1 cloud gateway."""


def _fail(exc: NimboError) -> None:
    raise click.ClickException(exc.message) from exc


Command = TypeVar("Command", bound=Callable[..., None])


def audited(
    action: str, *, kind: str, entity: tuple[str, ...] = ("name",), detail: tuple[str, ...] = ()
) -> Callable[[Command], Command]:
    """Record an admin command in the audit log, done (status 0) or refused (its exit
    status): ``entity`` names the parameters that may hold what it acted on (the first given
    counts), ``detail`` those worth keeping beside it. Secrets never travel as parameters
    (passwords are read from standard input)."""

    def decorate(command: Command) -> Command:
        @functools.wraps(command)
        def run(**params: Any) -> None:
            try:
                command(**params)
            except click.ClickException as exc:
                failed = _record_command(action, kind, params, entity, detail, exc.exit_code)
                if failed:
                    click.echo(f"warning: {failed}", err=True)
                raise
            failed = _record_command(action, kind, params, entity, detail, 0)
            if failed:
                raise click.ClickException(failed)

        return cast(Command, run)

    return decorate


def _record_command(
    action: str,
    kind: str,
    params: dict[str, Any],
    entity: tuple[str, ...],
    detail: tuple[str, ...],
    status: int,
) -> str | None:
    """Write the audit record of a command; what went wrong, or None."""
    from gateway.audit import record_command

    path = click.get_current_context().command_path.split()[1:]
    given = [n for n in entity if params.get(n)]
    what = ""
    if given:  # several possible parameters (--user, --group): say which one it was
        what = f"{given[0]}:{params[given[0]]}" if len(entity) > 1 else str(params[given[0]])
    try:
        with _store(_config(params.get("data_dir"))) as store:
            record_command(
                store,
                " ".join(["nimbo", *path]),
                action,
                kind=kind,
                entity=what,
                status=status,
                detail=" ".join(f"{n}={_param_text(params[n])}" for n in detail if n in params),
            )
    except NimboError as exc:
        return f"not recorded in the audit log: {exc.message}"
    return None


def _param_text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


_pem = click.Path(exists=True, dir_okay=False, resolve_path=True)


def tls_options(command: Any) -> Any:
    """``--tls-cert/--tls-key/--client-ca``: the settings tls_cert, tls_key, tls_client_ca."""
    for option in (
        click.option("--client-ca", type=_pem, help="Verify client certificates of these CAs "
                     "(PEM); clients may still come without one (NIMBO_TLS_CLIENT_CA)."),
        click.option("--tls-key", type=_pem, help="Private key of --tls-cert (NIMBO_TLS_KEY)."),
        click.option("--tls-cert", type=_pem, help="Serve HTTPS with this certificate (PEM, "
                     "with its chain) (NIMBO_TLS_CERT)."),
    ):
        command = option(command)
    return command


def _api_config(data_dir: str | None, listen: str | None, tls_cert: str | None,
                tls_key: str | None, client_ca: str | None) -> Config:
    """The configuration of ``up``/``serve``; a TLS key or client CA needs a certificate."""
    config = _config(data_dir, listen=listen, tls_cert=tls_cert, tls_key=tls_key,
                     tls_client_ca=client_ca)
    if (config.tls_key or config.tls_client_ca) and not config.tls_cert:
        raise click.UsageError("--tls-key and --client-ca (tls_key, tls_client_ca) need "
                               "--tls-cert (tls_cert)")
    return config


@main.command()
@pass_overrides
@click.option("--listen", help="Address:port of the API (default 127.0.0.1:8787).")
@tls_options
def up(
    data_dir: str | None,
    listen: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    client_ca: str | None,
) -> None:
    """Start the all-in-one node: redis (unless NIMBO_REDIS_URL), worker and API."""
    from gateway.embedded import start_redis, stop

    try:
        config = _api_config(data_dir, listen, tls_cert, tls_key, client_ca)
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
                f"nimbostratus up on {'https' if config.tls_cert else 'http'}://{config.listen}/ "
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
        "NIMBO_TLS_CERT": config.tls_cert,
        "NIMBO_TLS_KEY": config.tls_key,
        "NIMBO_TLS_CLIENT_CA": config.tls_client_ca,
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
    from gateway.store.models import User

    secret_file = config.data_path / "admin-password"
    with _store(config) as store, store.session(write=True) as session:
        if session.get(User, "admin") is None:
            password = generate_password()
            session.add(User(name="admin", password_hash=hash_password(password), is_admin=True))
            fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(password + "\n")
            click.echo(f"created user admin; its password is in {secret_file}")


@main.command()
@pass_overrides
@click.option("--listen", help="Address:port of the API.")
@tls_options
def serve(
    data_dir: str | None,
    listen: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    client_ca: str | None,
) -> None:
    """Run the API only (gunicorn; HTTPS with --tls-cert, see gateway.gunicorn_conf)."""
    config = _api_config(data_dir, listen, tls_cert, tls_key, client_ca)
    os.environ["NIMBO_DATA_DIR"] = str(config.data_path)
    for name in ("tls_cert", "tls_key", "tls_client_ca"):  # for gunicorn_conf
        os.environ[f"NIMBO_{name.upper()}"] = getattr(config, name)
    if config.api_malloc_arenas:  # read by glibc at exec; the workers fork from the master
        os.environ.setdefault("MALLOC_ARENA_MAX", str(config.api_malloc_arenas))
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
@audited("create", kind="user", detail=("admin",))
def users_add(data_dir: str | None, name: str, admin: bool) -> None:
    """Add user NAME; the password is read from standard input."""
    from auth.passwords import hash_password
    from gateway.store.models import User

    password = sys.stdin.readline().rstrip("\n")
    if len(password) < 8:
        raise click.ClickException("the password (read from stdin) needs at least 8 characters")
    with _store(_config(data_dir)) as store, store.session(write=True) as session:
        if session.get(User, name) is not None:
            raise click.ClickException(f"user {name} exists already")
        session.add(User(name=name, password_hash=hash_password(password), is_admin=admin))
    click.echo(f"user {name} added")


# A running API caches successful logins for 30 s (auth/local.py) and accounts for 10 s
# (gateway/services/accounts.py): a changed password, group list, admin flag or a disabled
# account takes effect there within 30 s.
TAKES_EFFECT = "a running API applies it within 30 s"


def _change_user(data_dir: str | None, name: str, change: Any, *, local: str = "") -> None:
    """Run ``change(user)`` on the row of ``name`` in a write transaction; ``local``: what
    only local accounts have (an external identity's source keeps it)."""
    from gateway.store.models import User

    with _store(_config(data_dir)) as store, store.session(write=True) as session:
        user = session.get(User, name)
        if user is None:
            raise click.ClickException(f"no user {name}")
        if local and user.source != "local":
            raise click.ClickException(
                f"{name} is an {user.source} identity: its {local} come from {user.source}"
            )
        change(user)


@users.command("passwd")
@pass_overrides
@click.argument("name")
@audited("passwd", kind="user")
def users_passwd(data_dir: str | None, name: str) -> None:
    """Set the password of local user NAME, read from standard input."""
    from auth.passwords import hash_password

    password = sys.stdin.readline().rstrip("\n")
    if len(password) < 8:
        raise click.ClickException("the password (read from stdin) needs at least 8 characters")
    hashed = hash_password(password)

    def change(user: Any) -> None:
        user.password_hash = hashed

    _change_user(data_dir, name, change, local="password and groups")
    click.echo(f"password of {name} changed; {TAKES_EFFECT}")


@users.command("disable")
@pass_overrides
@click.argument("name")
@audited("disable", kind="user")
def users_disable(data_dir: str | None, name: str) -> None:
    """Refuse every request of user NAME (its entities stay)."""
    _change_user(data_dir, name, lambda user: setattr(user, "disabled", True))
    click.echo(f"user {name} disabled; {TAKES_EFFECT}")


@users.command("enable")
@pass_overrides
@click.argument("name")
@audited("enable", kind="user")
def users_enable(data_dir: str | None, name: str) -> None:
    """Accept user NAME again."""
    _change_user(data_dir, name, lambda user: setattr(user, "disabled", False))
    click.echo(f"user {name} enabled; {TAKES_EFFECT}")


@users.command("groups")
@pass_overrides
@click.argument("name")
@click.argument("groups", default="")
@audited("groups", kind="user", detail=("groups",))
def users_groups(data_dir: str | None, name: str, groups: str) -> None:
    """Set the groups of local user NAME: GROUPS comma-separated (none given: no group)."""
    from gateway.services.tenancy import group_name

    try:
        names = sorted({g for g in (group_name(n, what="group") for n in groups.split(",")) if g})
    except NimboError as exc:
        _fail(exc)
    _change_user(data_dir, name, lambda user: setattr(user, "groups", names), local="groups")
    click.echo(f"groups of {name}: {', '.join(names) or 'none'}; {TAKES_EFFECT}")


@users.command("admin")
@pass_overrides
@click.argument("name")
@click.option("--on/--off", "on", required=True, help="Give or take administrator rights.")
@audited("admin", kind="user", detail=("on",))
def users_admin(data_dir: str | None, name: str, on: bool) -> None:
    """Give user NAME administrator rights (--on) or take them (--off)."""
    _change_user(data_dir, name, lambda user: setattr(user, "is_admin", on))
    click.echo(f"user {name} {'is' if on else 'is no longer'} an administrator; {TAKES_EFFECT}")


@users.command("list")
@pass_overrides
def users_list(data_dir: str | None) -> None:
    """Every account: name, source, admin, disabled, groups (tab-separated)."""
    from sqlalchemy import select

    from gateway.store.models import User

    with _store(_config(data_dir)) as store, store.session() as session:
        rows = session.scalars(select(User).order_by(User.name)).all()
        click.echo("name\tsource\tadmin\tdisabled\tgroups")
        for user in rows:
            flags = ("yes" if user.is_admin else "no", "yes" if user.disabled else "no")
            groups = ",".join(sorted(user.groups or ()))
            click.echo("\t".join((user.name, user.source, *flags, groups)))


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
@audited("create", kind="image", detail=("path", "url", "checksum"))
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

    if bool(path) == bool(url):
        raise click.ClickException("give exactly one of --file and --url")
    try:
        with _store(_config(data_dir)) as store:
            registered = register_image(
                store, name, path or str(url), title=title, checksum=checksum
            )
    except NimboError as exc:
        _fail(exc)
    click.echo(f"image {registered.term} registered ({registered.checksum or 'no checksum'})")


@image.command("rm")
@pass_overrides
@click.argument("name")
@audited("delete", kind="image")
def image_rm(data_dir: str | None, name: str) -> None:
    """Remove image NAME (refused while a compute starts from it). A saved image's volume is
    deleted by its host's worker; a registered file or URL is left where it is."""
    from gateway.services.catalog import template_scheme
    from gateway.services.images import remove_image

    config = _config(data_dir)
    try:
        with _store(config) as store, store.session(write=True) as session:
            removed = remove_image(session, template_scheme(config, "os_tpl"), name)
            registered = removed.source if removed.origin_compute is None else ""
    except NimboError as exc:
        _fail(exc)
    kept = f"; {registered} left in place" if registered else ""
    click.echo(f"image {name} removed{kept}")


# --- CDMI --------------------------------------------------------------------------------


@main.group()
def cdmi() -> None:
    """The CDMI storage service."""


@cdmi.command("sweep")
@pass_overrides
@click.option("--grace", type=click.IntRange(min=0), help="Only blobs published at least this "
              "many seconds ago (default: cdmi_orphan_grace_seconds). Go lower only while no "
              "API process runs: a younger blob may be a value whose write is still running.")
@click.option("--dry-run", is_flag=True, help="Print the orphaned blobs; remove nothing.")
def cdmi_sweep(data_dir: str | None, grace: int | None, dry_run: bool) -> None:
    """Remove the blob files no CDMI object names (a crash leaves them), printing each.

    A sweep that removed something is recorded in the audit log. The API runs one as
    `nimbo serve` starts (see gateway.services.cdmi_sweep)."""
    from backends.blobfs import FilesystemBlobStore
    from gateway.services.cdmi_sweep import SweepReport, sweep_orphans

    config = _config(data_dir)
    grace = config.cdmi_orphan_grace_seconds if grace is None else grace
    verb = "would remove" if dry_run else "removed"
    report = SweepReport()
    try:
        with _store(config) as store:
            try:
                sweep_orphans(
                    store,
                    FilesystemBlobStore(config.effective_blob_dir),
                    grace=grace,
                    dry_run=dry_run,
                    on_orphan=lambda blob: click.echo(f"{verb} {blob.blob_id} ({blob.size} bytes)"),
                    report=report,
                )
            except NimboError:
                _record_sweep(store, report, grace, status=1, dry_run=dry_run)
                raise
            _record_sweep(store, report, grace, status=int(bool(report.failures)), dry_run=dry_run)
    except NimboError as exc:
        _fail(exc)
    click.echo(f"{verb} {report.summary} (published over {grace} s ago, named by no object)")
    if report.failures:
        for failure in report.failures:
            click.echo(failure, err=True)
        raise click.ClickException("the blobs that could not be removed stay for the next sweep")


def _record_sweep(
    store: Store, report: SweepReport, grace: int, *, status: int, dry_run: bool
) -> None:
    """The audit record of a sweep that removed (or failed to remove) something."""
    from gateway.audit import record_command

    if dry_run or not (report.files or report.failures):
        return
    record_command(store, "nimbo cdmi sweep", "sweep", kind="blob", entity="", status=status,
                   detail=f"removed {report.summary}; grace={grace}")


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                                "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def conformance(args: tuple[str, ...]) -> None:
    """Run a conformance suite against an endpoint (same as nimbo-conformance; try --help)."""
    from conformance.cli import main as conformance_main

    sys.exit(conformance_main(list(args)))


# --- quotas ------------------------------------------------------------------------------


@main.group()
def quota() -> None:
    """Quotas per user and per group (defaults: quota_user_defaults, quota_group_defaults)."""


def _quota_holder(user: str | None, group: str | None) -> tuple[str, str]:
    if bool(user) == bool(group):
        raise click.ClickException("give exactly one of --user and --group")
    return ("user", user) if user else ("group", str(group))


quota_user = click.option("--user", help="The user the quota is of.")
quota_group = click.option("--group", help="The group the quota is of (its members' sum).")


@quota.command("set")
@pass_overrides
@quota_user
@quota_group
@click.argument("limits", nargs=-1, required=True, metavar="RESOURCE=LIMIT...")
@audited("set", kind="quota", entity=("user", "group"), detail=("limits",))
def quota_set(
    data_dir: str | None, user: str | None, group: str | None, limits: tuple[str, ...]
) -> None:
    """Set limits, e.g. cores=20 memory=64 cdmi_bytes=10G public_addresses=unlimited.

    Resources: instances, cores, memory (GiB), storage (GiB), cdmi_bytes, public_addresses.
    A limit is a number, or 'unlimited' (overriding a default). Refusals happen from the
    next request on; what is held already stays."""
    from gateway.services.quotas import parse_limit
    from gateway.store.models import QuotaLimit

    scope, name = _quota_holder(user, group)
    parsed: dict[str, float | None] = {}
    try:
        for item in limits:
            resource, equals, value = item.partition("=")
            if not equals or not value:
                raise click.ClickException(f"{item!r}: write RESOURCE=LIMIT, e.g. cores=20")
            parsed[resource.strip()] = parse_limit(resource.strip(), value)
    except NimboError as exc:
        _fail(exc)
    with _store(_config(data_dir)) as store, store.session(write=True) as session:
        for resource, maximum in parsed.items():
            row = session.get(QuotaLimit, (scope, name, resource))
            if row is None:
                session.add(QuotaLimit(scope=scope, name=name, resource=resource, maximum=maximum))
            else:
                row.maximum = maximum
    shown = ", ".join(f"{r}={_limit_text(m)}" for r, m in parsed.items())
    click.echo(f"quota of {scope} {name}: {shown}")


@quota.command("unset")
@pass_overrides
@quota_user
@quota_group
@click.argument("resources", nargs=-1, metavar="[RESOURCE]...")
@audited("unset", kind="quota", entity=("user", "group"), detail=("resources",))
def quota_unset(
    data_dir: str | None, user: str | None, group: str | None, resources: tuple[str, ...]
) -> None:
    """Remove limits set with 'quota set' (all of them when no RESOURCE is named): the
    defaults apply again."""
    from sqlalchemy import delete

    from gateway.services.quotas import RESOURCES
    from gateway.store.models import QuotaLimit

    scope, name = _quota_holder(user, group)
    unknown = [r for r in resources if r not in RESOURCES]
    if unknown:
        raise click.ClickException(
            f"unknown resource(s) {', '.join(unknown)} (known: {', '.join(RESOURCES)})"
        )
    with _store(_config(data_dir)) as store, store.session(write=True) as session:
        query = delete(QuotaLimit).where(QuotaLimit.scope == scope, QuotaLimit.name == name)
        if resources:
            query = query.where(QuotaLimit.resource.in_(resources))
        removed = getattr(session.execute(query), "rowcount", 0)
    click.echo(f"quota of {scope} {name}: {removed} limit(s) removed; defaults apply")


@quota.command("show")
@pass_overrides
@quota_user
@quota_group
def quota_show(data_dir: str | None, user: str | None, group: str | None) -> None:
    """Limits and current use of a user or group; without --user/--group, the defaults and
    every user and group that has limits of its own."""
    from sqlalchemy import select

    from gateway.services.quotas import Quotas
    from gateway.store.models import QuotaLimit

    config = _config(data_dir)
    quotas = Quotas(config)
    with _store(config) as store, store.session() as session:
        if user or group:
            holders = [_quota_holder(user, group)]
        else:
            for scope in ("user", "group"):
                defaults = quotas.defaults[scope]
                shown = ", ".join(f"{r}={_limit_text(m)}" for r, m in defaults.items())
                click.echo(f"{scope} defaults: {shown or 'none (unlimited)'}")
            holders = [
                (scope, name)
                for scope, name in session.execute(
                    select(QuotaLimit.scope, QuotaLimit.name)
                    .distinct()
                    .order_by(QuotaLimit.scope.desc(), QuotaLimit.name)
                )
            ]
        for holder in holders:
            click.echo(f"{holder[0]} {holder[1]}")
            click.echo(f"  {'resource':<20} {'limit':>14} {'':<8} {'in use':>14}")
            for line in quotas.report(session, holder):
                click.echo(
                    f"  {_resource_text(line.resource):<20} {_limit_text(line.limit):>14} "
                    f"{line.origin:<8} {_amount(line.use):>14}"
                )


def _limit_text(value: float | None) -> str:
    return "unlimited" if value is None else _amount(value)


def _amount(value: float) -> str:
    from gateway.services.quotas import amount_text

    return amount_text(value)


def _resource_text(resource: str) -> str:
    from gateway.services.quotas import UNITS

    unit = UNITS.get(resource)
    return f"{resource} ({unit})" if unit == "GiB" else resource


@main.command("audit")
@pass_overrides
@click.option("--user", help="Only records of this user (or of failed logins as this name).")
@click.option("--entity", help="Only records of this entity id, CDMI path or object ID.")
@click.option("--action", help="Only this action (create, delete, start, authenticate, ...).")
@click.option("--since", help="From this time: ISO 8601 (2024-05-01T12:00Z) or an age (2h, 7d).")
@click.option("--until", help="Before this time, as --since.")
@click.option("--limit", type=click.IntRange(1, 100000), default=50, show_default=True)
def audit_log(
    data_dir: str | None,
    user: str | None,
    entity: str | None,
    action: str | None,
    since: str | None,
    until: str | None,
    limit: int,
) -> None:
    """Show the audit log, newest first (records still pending in Redis are moved first)."""
    from datetime import UTC, datetime

    from gateway.audit import AuditLog, Query, as_document, parse_time
    from gateway.queue import connect

    config = _config(data_dir)
    connection = connect(config.effective_redis_url)
    try:
        with _store(config) as store:
            log = AuditLog(store, connection, config)
            now = datetime.now(UTC)
            query = Query(
                user=user,
                entity=entity,
                action=action,
                since=parse_time(since, now) if since else None,
                until=parse_time(until, now) if until else None,
                limit=limit,
            )
            try:
                log.flush()
            except NimboError as exc:
                click.echo(f"warning: the newest records may be missing: {exc.message}", err=True)
            rows, more = log.query(query)
    except NimboError as exc:
        _fail(exc)
    finally:
        connection.close()
    columns = ("time", "user", "address", "action", "kind", "entity", "status", "operations")
    table = [[_audit_cell(as_document(row)[name]) for name in columns] for row in rows]
    widths = [max([len(name), *(len(line[i]) for line in table)]) for i, name in enumerate(columns)]
    click.echo("  ".join(name.upper().ljust(w) for name, w in zip(columns, widths, strict=True)))
    for line in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
    if more:
        click.echo("(more records match; raise --limit or narrow with --since/--until)")


def _audit_cell(value: object) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "-"
    return str(value) if value not in ("", None) else "-"


if __name__ == "__main__":
    main()
