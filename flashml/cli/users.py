"""`flashml users`: console users, on a named server (the users API) or in the local data directory."""

from __future__ import annotations

import sys

import click

from flashml.cli.admin import Where, admin_options
from flashml.cli.main import main
from flashml.cli.options import json_option
from flashml.cli.output import print_json, print_table, when
from flashml.client import UserRecord

ROLES = ["admin", "maintainer", "viewer"]


@main.group()
def users() -> None:
    """Manage console users (on the server named by --server, FLASHML_SERVER or a profile; else in the data
    directory)."""


def _password(password_stdin: bool, prompt: str = "Password") -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt(prompt, hide_input=True, confirmation_prompt=True)


def _state(u: UserRecord) -> str:
    return "disabled" if u.disabled else ("locked" if u.locked else "active")


def _done(user: UserRecord, as_json: bool, text: str) -> None:
    print_json(user) if as_json else click.echo(text)


@users.command("create")
@click.argument("name")
@click.option("--admin", is_flag=True, help="Make the user an admin.")
@click.option("--role", type=click.Choice(ROLES), default=None,
              help="What the user may do in the console: viewers read, maintainers also change models and jobs, "
                   "admins also manage users and keys (default viewer).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (for scripts).")
@json_option
@admin_options(creates=True)
def users_create(name: str, admin: bool, role: str | None, password_stdin: bool, as_json: bool, where: Where) -> None:
    """Create a user (the password is asked for, or read with --password-stdin)."""
    role = "admin" if admin else (role or "viewer")
    password = _password(password_stdin)
    user = where.run(lambda c: c.create_user(name, password, role),
                     lambda s: s.users.create(name, password, role=role, actor="cli"), UserRecord)
    _done(user, as_json, f"Created {user.role} {user.name}.")


@users.command("list")
@json_option
@admin_options
def users_list(as_json: bool, where: Where) -> None:
    """List the console users: role, and whether disabled or locked by failed sign-ins."""
    found = where.run(lambda c: c.list_users(), lambda s: s.users.list_users(), list[UserRecord])
    if as_json:
        print_json(found)
        return
    print_table(["name", "role", "state", "created (UTC)"],
                [[u.name, u.role, _state(u), when(u.created_at)] for u in found], "no users")


@users.command("show")
@click.argument("name")
@json_option
@admin_options
def users_show(name: str, as_json: bool, where: Where) -> None:
    """One user: role, state and when they were made."""
    u = where.run(lambda c: c.get_user(name), lambda s: s.users.get(name), UserRecord)
    if as_json:
        print_json(u)
    else:
        print_table(["name", "role", "state", "created (UTC)"], [[u.name, u.role, _state(u), when(u.created_at)]])


@users.command("disable")
@click.argument("name")
@json_option
@admin_options
def users_disable(name: str, as_json: bool, where: Where) -> None:
    """Disable a user: they cannot sign in, and their sessions end at once."""
    u = where.run(lambda c: c.set_user_disabled(name, True),
                  lambda s: s.users.set_disabled(name, True, actor="cli"), UserRecord)
    _done(u, as_json, f"Disabled {name}.")


@users.command("enable")
@click.argument("name")
@json_option
@admin_options
def users_enable(name: str, as_json: bool, where: Where) -> None:
    """Let a disabled user sign in again."""
    u = where.run(lambda c: c.set_user_disabled(name, False),
                  lambda s: s.users.set_disabled(name, False, actor="cli"), UserRecord)
    _done(u, as_json, f"Enabled {name}.")


@users.command("delete")
@click.argument("name")
@admin_options
def users_delete(name: str, where: Where) -> None:
    """Delete a user (their sessions end; the audit log keeps their name). The last enabled admin stays."""
    where.run(lambda c: c.delete_user(name), lambda s: s.users.delete(name, actor="cli"))
    click.echo(f"Deleted {name}.")


@users.command("reset-password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the new password from standard input (for scripts).")
@json_option
@admin_options
def users_reset_password(name: str, password_stdin: bool, as_json: bool, where: Where) -> None:
    """Set a user's password as an admin (asked for, or read with --password-stdin); their sessions end."""
    password = _password(password_stdin, "New password")
    u = where.run(lambda c: c.reset_password(name, password),
                  lambda s: s.users.reset_password(name, password, actor="cli"), UserRecord)
    _done(u, as_json, f"Set a new password for {name}.")


@users.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True,
              help="Read the current password, then the new one, one a line from standard input (for scripts).")
@admin_options(needs_key=False)
def users_passwd(name: str, password_stdin: bool, where: Where) -> None:
    """Change your own password: proven by the current one, no API key needed. Failed tries count as failed
    sign-ins. Your other sessions end."""
    if password_stdin:
        current = sys.stdin.readline().rstrip("\r\n")
        new = sys.stdin.readline().rstrip("\r\n")
    else:
        current = click.prompt("Current password", hide_input=True)
        new = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    where.run(lambda c: c.change_password(name, current, new),
              lambda s: s.users.change_password(name, current, new))
    click.echo(f"Changed the password of {name}.")


@users.command("unlock")
@click.argument("name")
@json_option
@admin_options
def users_unlock(name: str, as_json: bool, where: Where) -> None:
    """Clear a user's failed sign-ins, so that addresses refused for the account may try again (a running
    server reads the unlock from the database)."""
    if where.remote:
        u = where.run(lambda c: c.unlock_user(name), lambda s: s.sign_ins.unlock(name, actor="cli"))
        if as_json:
            print_json(u)
            return
    else:
        where.run(lambda c: c.unlock_user(name), lambda s: s.sign_ins.unlock(name, actor="cli"))
        if as_json:
            print_json(where.run(lambda c: c.get_user(name), lambda s: s.users.get(name), UserRecord))
            return
    click.echo(f"Unlocked {name}.")
