"""The `sipline` command: serve, migrate, projects, tokens. Flags override SIPLINE_* variables."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from . import __version__
from .config import Settings, settings_error
from .domain.errors import NotFound
from .domain.fields import FieldError
from .domain.profile import domain_identifier as check_domain_identifier
from .domain.profile import sip_domain
from .net import StartupError
from .runtime import Runtime
from .serve import open_runtime, open_store, run
from .store import db, projects, tokens


def _settings(args: argparse.Namespace) -> Settings:
    names = Settings.model_fields.keys()
    overrides = {k: v for k, v in vars(args).items() if k in names and v is not None}
    return Settings(**overrides)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="SIPLINE_DATA_DIR (default ./var)")
    p.add_argument("--database-url", help="SIPLINE_DATABASE_URL (default: SQLite in the data dir)")
    p.add_argument("--sip-domain", help="SIPLINE_SIP_DOMAIN (default sip.localhost)")
    p.add_argument("--secret-key", help=argparse.SUPPRESS)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sipline", description=__doc__)
    parser.add_argument("--version", action="version", version=f"sipline {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the HTTP API and the SIP server")
    _common(serve)
    serve.add_argument("--http-host", help="SIPLINE_HTTP_HOST (default 127.0.0.1)")
    serve.add_argument("--http-port", type=int, help="SIPLINE_HTTP_PORT (default 8080; 0 picks a free port)")
    serve.add_argument("--sip-host", help="SIPLINE_SIP_HOST (default 127.0.0.1)")
    serve.add_argument("--sip-udp-port", type=int, help="SIPLINE_SIP_UDP_PORT (default 5060)")
    serve.add_argument("--sip-tcp-port", type=int, help="SIPLINE_SIP_TCP_PORT (default 5060)")
    serve.add_argument("--sip-tls-port", type=int, help="SIPLINE_SIP_TLS_PORT (default 5061)")
    serve.add_argument("--tls-cert", help="SIPLINE_TLS_CERT (default: self-signed, generated in the data dir)")
    serve.add_argument("--tls-key", help="SIPLINE_TLS_KEY")
    serve.add_argument("--log-level", help="SIPLINE_LOG_LEVEL: debug, info (default), warning, error")
    serve.add_argument("--log-format", choices=("text", "json"), help="SIPLINE_LOG_FORMAT (default text)")
    serve.add_argument(
        "--sip-digest-algorithms", help="SIPLINE_SIP_DIGEST_ALGORITHMS, in challenge order (default MD5)"
    )
    serve.add_argument("--sip-trusted-networks", help="SIPLINE_SIP_TRUSTED_NETWORKS: never throttled, e.g. 10.0.0.0/8")
    serve.add_argument("--no-sip", action="store_true", help="serve the HTTP API alone")
    serve.add_argument("--workers", type=int, help="SIPLINE_WORKERS: processes sharing the ports (default 1)")

    mig = sub.add_parser("migrate", help="apply database migrations (serve does this too)")
    _common(mig)

    proj = sub.add_parser("projects", help="manage projects").add_subparsers(dest="action", required=True)
    create = proj.add_parser("create", help="create a project")
    _common(create)
    create.add_argument("--name", required=True)
    create.add_argument("--domain-identifier")
    create.add_argument("--json", action="store_true")
    listing = proj.add_parser("list", help="list projects, with their signing keys")
    _common(listing)
    listing.add_argument("--json", action="store_true")
    rotate = proj.add_parser(
        "rotate-signing-key", help="give a project a new signing key (requests are signed with it at once)"
    )
    _common(rotate)
    rotate.add_argument("project", metavar="PROJECT_ID")
    rotate.add_argument("--json", action="store_true")

    tok = sub.add_parser("tokens", help="manage API tokens").add_subparsers(dest="action", required=True)
    tcreate = tok.add_parser("create", help="create an API token (shown once)")
    _common(tcreate)
    tcreate.add_argument("--project", required=True, help="project id")
    tcreate.add_argument("--scopes", default="voice", help=f"comma-separated, from: {','.join(tokens.SCOPES)}")
    tcreate.add_argument("--json", action="store_true")
    tlist = tok.add_parser("list", help="list a project's API tokens (never the tokens themselves)")
    _common(tlist)
    tlist.add_argument("--project", required=True, help="project id")
    tlist.add_argument("--json", action="store_true")
    revoke = tok.add_parser("revoke", help="revoke an API token")
    _common(revoke)
    revoke.add_argument("token", metavar="TOKEN_OR_ID")
    return parser


class UsageError(Exception):
    """A bad argument: printed as one line, exit status 2."""


def _with_db(settings: Settings, action: Callable[[Runtime], Awaitable[int]]) -> int:
    async def go() -> int:
        rt = open_runtime(settings)
        try:
            await open_store(rt)
            return await action(rt)
        finally:
            await rt.db.dispose()

    try:
        return asyncio.run(go())
    except UsageError as exc:
        print(f"sipline: {exc}", file=sys.stderr)
        return 2
    except StartupError as exc:
        print(f"sipline: {exc}", file=sys.stderr)
        return 1
    except (SQLAlchemyError, OSError) as exc:
        print(f"sipline: database unreachable: {db.reason(exc)}", file=sys.stderr)
        return 1


def _print(data: Any, as_json: bool, text: str) -> None:
    print(json.dumps(data) if as_json else text)


def _project_view(project: dict[str, Any], settings: Settings) -> dict[str, Any]:
    return {
        "id": project["id"],
        "name": project["name"],
        "domain": sip_domain(project["domain_identifier"], settings.sip_domain),
        "signing_key": project["signing_key"],
    }


def _project_line(view: dict[str, Any]) -> str:
    return f"{view['id']}  {view['name']}  {view['domain']}  signing key {view['signing_key']}"


async def _migrate(rt: Runtime, args: argparse.Namespace) -> int:
    print("sipline: database is at the latest schema")  # _with_db has just migrated
    return 0


async def _projects_create(rt: Runtime, args: argparse.Namespace) -> int:
    ident = args.domain_identifier
    if ident is not None:
        try:
            ident = check_domain_identifier(ident)
        except FieldError as exc:
            raise UsageError(f"--domain-identifier {exc.detail}") from None

    def create(conn: Connection) -> dict[str, Any] | None:
        if ident and projects.domain_identifier_taken(conn, ident):
            return None
        return projects.create(conn, args.name, ident)

    project = await rt.db.write(create)
    if project is None:
        raise UsageError(f"domain identifier {ident!r} is already taken")
    view = _project_view(project, rt.settings)
    _print(view, args.json, _project_line(view))
    return 0


async def _projects_list(rt: Runtime, args: argparse.Namespace) -> int:
    rows = [_project_view(p, rt.settings) for p in await rt.db.read(projects.list_all)]
    _print(rows, args.json, "\n".join(map(_project_line, rows)))
    return 0


async def _projects_rotate_signing_key(rt: Runtime, args: argparse.Namespace) -> int:
    try:
        key = await rt.db.write(projects.rotate_signing_key, args.project)
    except NotFound:
        raise UsageError(f"no project with id {args.project!r}") from None
    _print({"id": args.project, "signing_key": key}, args.json, key)
    return 0


async def _tokens_create(rt: Runtime, args: argparse.Namespace) -> int:
    scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
    unknown = [s for s in scopes if s not in tokens.SCOPES]
    if unknown or not scopes:
        raise UsageError(f"unknown scope(s) {unknown}; choose from {','.join(tokens.SCOPES)}")

    def create(conn: Connection) -> tuple[str, tokens.TokenRecord] | None:
        if projects.get(conn, args.project) is None:
            return None
        return tokens.create(conn, args.project, scopes)

    made = await rt.db.write(create)
    if made is None:
        raise UsageError(f"no project with id {args.project!r}")
    token, record = made
    _print(
        {"token": token, "id": record.id, "project_id": record.project_id, "scopes": scopes},
        args.json,
        f"{token}\n(shown once; token id {record.id}, scopes {','.join(scopes)})",
    )
    return 0


async def _tokens_list(rt: Runtime, args: argparse.Namespace) -> int:
    def listing(conn: Connection) -> list[dict[str, Any]] | None:
        if projects.get(conn, args.project) is None:
            return None
        return tokens.list_for_project(conn, args.project)

    rows = await rt.db.read(listing)
    if rows is None:
        raise UsageError(f"no project with id {args.project!r}")
    text = "\n".join(
        f"{r['id']}  {','.join(r['scopes'])}  created {r['created']}" + ("  revoked" if r["revoked"] else "")
        for r in rows
    )
    _print(rows, args.json, text)
    return 0


async def _tokens_revoke(rt: Runtime, args: argparse.Namespace) -> int:
    done = await rt.db.write(tokens.revoke, args.token)
    print("sipline: token revoked" if done else "sipline: no live token matches", file=sys.stderr)
    return 0 if done else 1


_COMMANDS: dict[tuple[str, str | None], Callable[[Runtime, argparse.Namespace], Awaitable[int]]] = {
    ("migrate", None): _migrate,
    ("projects", "create"): _projects_create,
    ("projects", "list"): _projects_list,
    ("projects", "rotate-signing-key"): _projects_rotate_signing_key,
    ("tokens", "create"): _tokens_create,
    ("tokens", "list"): _tokens_list,
    ("tokens", "revoke"): _tokens_revoke,
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = _settings(args)
    except ValidationError as exc:
        print(f"sipline: {settings_error(exc)}", file=sys.stderr)
        return 2
    if args.command == "serve":
        return run(settings, sip=not args.no_sip)
    command = _COMMANDS[(args.command, getattr(args, "action", None))]
    return _with_db(settings, lambda rt: command(rt, args))


if __name__ == "__main__":
    sys.exit(main())
