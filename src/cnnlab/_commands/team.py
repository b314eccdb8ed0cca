"""`cnnlab server` and its actions: the shared tracking server and its users."""

from __future__ import annotations

import os
import sys

from cnnlab._commands._common import EXIT_ERROR, EXIT_OK, Parser, tracking_args


def cmd_server(args) -> int:
    from cnnlab.tracking import server_command

    launch = server_command(
        backend_store_uri=args.backend_store_uri,
        artifacts_destination=args.artifacts_destination,
        runs_dir=args.runs_dir,
        host=args.host,
        port=args.port,
        allowed_hosts=args.allowed_hosts,
        auth=args.auth,
        admin_user=args.admin_user,
        admin_password_file=args.admin_password_file,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        insecure=args.insecure,
    )
    for warning in launch.warnings:
        print(f"cnnlab: warning: {warning}", file=sys.stderr)
    users = f", users in {launch.users}" if launch.users else ""
    print(f"MLflow tracking server on {launch.url} ({launch.store}{users})", flush=True)
    os.execve(launch.argv[0], launch.argv, launch.environ())
    return EXIT_ERROR  # not reached: execve replaces this process


def cmd_add_user(args) -> int:
    from cnnlab.config import ConfigError
    from cnnlab.tracking import (
        USER_PASSWORD_ENV,
        add_user,
        read_secret,
        shown,
        typed_password,
    )

    uri = _server_uri(args.tracking_uri)
    prompt = (lambda: typed_password(args.name)) if sys.stdin.isatty() else None
    password = read_secret(USER_PASSWORD_ENV, args.password_file, "--password-file", prompt)
    if password is None:
        raise ConfigError(
            f"add-user {args.name}: no password: set {USER_PASSWORD_ENV}, give --password-file "
            "FILE, or run it on a terminal to type it"
        )
    user = add_user(uri, args.name, password)
    role = "admin" if user.is_admin else "READ on every experiment until granted more"
    print(f"user {user.name} added to {shown(uri)} ({role})")
    return EXIT_OK


def cmd_grant(args) -> int:
    from cnnlab.tracking import grant, shown

    uri = _server_uri(args.tracking_uri)
    given = grant(uri, args.name, args.experiment, args.permission)
    print(
        f"user {given.user}: {given.permission} on experiment {given.experiment!r} "
        f"(id {given.experiment_id}) at {shown(uri)}"
    )
    return EXIT_OK


def _server_uri(override: str | None) -> str:
    """--tracking-uri, else MLFLOW_TRACKING_URI: a server, where users live."""
    from cnnlab.config import ConfigError, TrackingConfig
    from cnnlab.tracking import resolve_uri, shown

    uri = resolve_uri(TrackingConfig(), override)
    if not uri.startswith(("http://", "https://")):
        raise ConfigError(
            "--tracking-uri: users live on a tracking server: expected http(s)://HOST:PORT "
            f"(or MLFLOW_TRACKING_URI), got {shown(uri)}"
        )
    return uri


def add_parser(sub) -> None:
    server = sub.add_parser("server", help="a shared MLflow tracking server (one worker)")
    server.add_argument("--backend-store-uri", help="default: sqlite in --runs-dir")
    server.add_argument("--artifacts-destination", help="default: <runs dir>/artifacts")
    server.add_argument("--runs-dir", default="cnnlab-runs", help="home of the default store")
    server.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    server.add_argument("--port", type=int, default=5000)
    server.add_argument("--allowed-hosts", help="required to bind beyond loopback")
    server.add_argument(
        "--auth", action="store_true", help="users and passwords (required beyond loopback)"
    )
    server.add_argument("--admin-user", default="admin", help="--auth: the admin's name")
    server.add_argument(
        "--admin-password-file",
        metavar="FILE",
        help="--auth, first start: the admin's password (mode 600; or CNNLAB_ADMIN_PASSWORD)",
    )
    server.add_argument("--tls-cert", metavar="FILE", help="serve https: the certificate (PEM)")
    server.add_argument("--tls-key", metavar="FILE", help="serve https: its private key (PEM)")
    server.add_argument(
        "--insecure", action="store_true", help="bind beyond loopback without --auth"
    )
    server.set_defaults(handler=cmd_server)
    actions = server.add_subparsers(metavar="[ACTION]", parser_class=Parser)
    add = actions.add_parser("add-user", help="as the admin: add a user (READ until granted)")
    add.add_argument("name")
    add.add_argument(
        "--password-file",
        metavar="FILE",
        help="the new user's password (mode 600; or CNNLAB_USER_PASSWORD, or typed)",
    )
    tracking_args(add)
    add.set_defaults(handler=cmd_add_user)
    give = actions.add_parser("grant", help="as the admin: a user's permission on an experiment")
    give.add_argument("name")
    give.add_argument("experiment", help="created when the server has none by that name")
    give.add_argument("permission", help="READ, USE, EDIT (train, tune), MANAGE, DENY")
    tracking_args(give)
    give.set_defaults(handler=cmd_grant)
