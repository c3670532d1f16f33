"""`gateway` command line. Each command is small and calls into the package."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from pathlib import Path

from config import ConfigError, GatewayConfig, load_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gateway", description="Device-integration and video-supervision gateway.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("-c", "--config", default=os.environ.get("GATEWAY_CONFIG"), help="YAML configuration (default: $GATEWAY_CONFIG, else built-in defaults)")
        return p

    p = with_config(sub.add_parser("run", help="run the gateway"))
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("demo", help="gateway + every simulator on embedded defaults, console on http://127.0.0.1:8080")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--data-dir", default="data/demo")
    p.add_argument("--no-simulators", action="store_true", help="only the gateway and its demo configuration")
    p.add_argument("--faces", metavar="DIR", help="enrollment photos, one folder per demo person (p-0001 ...): the kiosk enrolls the first and checks in with the others")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("check-config", help="validate a configuration; errors name key path and line")
    p.add_argument("file")
    p.set_defaults(func=cmd_check_config)

    db = sub.add_parser("db", help="database").add_subparsers(dest="db_command", required=True, metavar="ACTION")
    p = with_config(db.add_parser("upgrade", help="apply migrations"))
    p.set_defaults(func=cmd_db_upgrade)

    user = sub.add_parser("user", help="console users").add_subparsers(dest="user_command", required=True, metavar="ACTION")
    p = with_config(user.add_parser("add", help="create a console user"))
    p.add_argument("name")
    p.add_argument("--role", required=True, choices=["admin", "monitor", "officer"])
    p.add_argument("--unit", default="root", help="the organisation unit the user belongs to (default: root, the whole installation)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input instead of prompting")
    p.set_defaults(func=cmd_user_add)

    dev = sub.add_parser("device", help="devices").add_subparsers(dest="device_command", required=True, metavar="ACTION")
    p = with_config(dev.add_parser("key", help="issue a new key for a kiosk or body-cam (printed once)"))
    p.add_argument("device_id")
    p.set_defaults(func=cmd_device_key)

    audit = sub.add_parser("audit", help="audit log").add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    p = with_config(audit.add_parser("verify", help="check the audit hash chain"))
    p.set_defaults(func=cmd_audit_verify)

    ev = sub.add_parser("evidence", help="evidence store").add_subparsers(dest="evidence_command", required=True, metavar="ACTION")
    p = with_config(ev.add_parser("verify", help="re-hash recordings, uploads and proceeding manifests"))
    p.set_defaults(func=cmd_evidence_verify)

    from gateway.cli_faces import register as register_faces

    register_faces(sub, with_config, _config)

    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


def _config(args: argparse.Namespace) -> GatewayConfig:
    try:
        return load_config(args.config)
    except ConfigError as e:
        print(e, file=sys.stderr)
        raise SystemExit(2) from None


def cmd_check_config(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.file)
    except ConfigError as e:
        print(e, file=sys.stderr)
        return 2
    print(f"{args.file}: OK ({len(cfg.persons)} persons, {len(cfg.devices)} devices, {len(cfg.zones)} zones)")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    cfg = _config(args)
    from gateway.runner import run_gateway

    return asyncio.run(run_gateway(cfg))


def cmd_demo(args: argparse.Namespace) -> int:
    from gateway.demo import run_demo

    return asyncio.run(run_demo(port=args.port, data_dir=Path(args.data_dir), simulators=not args.no_simulators,
                                faces=Path(args.faces) if args.faces else None))


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    cfg = _config(args)
    from gateway.db.engine import upgrade

    upgrade(cfg.database_url)
    print("database is at the newest schema")
    return 0


def cmd_user_add(args: argparse.Namespace) -> int:
    cfg = _config(args)
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {args.name}: ")
        if password != getpass.getpass("again: "):
            print("passwords differ", file=sys.stderr)
            return 1
    if len(password) < 8:
        print("password must have at least 8 characters", file=sys.stderr)
        return 1
    from gateway.users import add_user

    try:
        asyncio.run(add_user(cfg, args.name, args.role, password, actor="cli", unit=args.unit))
    except ValueError as e:
        print(e, file=sys.stderr)
        return 1
    print(f"user {args.name} ({args.role}, unit {args.unit}) created")
    return 0


def cmd_device_key(args: argparse.Namespace) -> int:
    cfg = _config(args)
    from gateway.users import issue_device_key

    try:
        key = asyncio.run(issue_device_key(cfg, args.device_id, actor="cli"))
    except ValueError as e:
        print(e, file=sys.stderr)
        return 1
    print(key)
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    cfg = _config(args)
    from gateway.users import verify_audit

    count, problems = asyncio.run(verify_audit(cfg))
    for p in problems:
        print(p)
    print(f"audit log: {count} entries, {'INTACT' if not problems else f'{len(problems)} PROBLEM(S)'}")
    return 0 if not problems else 1


def cmd_evidence_verify(args: argparse.Namespace) -> int:
    cfg = _config(args)
    from gateway.users import verify_evidence

    count, problems = asyncio.run(verify_evidence(cfg))
    for p in problems:
        print(p)
    print(f"evidence: {count} items checked, {'INTACT' if not problems else f'{len(problems)} PROBLEM(S)'}")
    return 0 if not problems else 1


if __name__ == "__main__":
    raise SystemExit(main())
