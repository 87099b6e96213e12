"""`python manage.py create_user USERNAME --role annotator [--role ...] [--email E] [--password-from-stdin]`:
the same checks and audit as the Users page (`aicell.accounts.user_create`). Without --password-from-stdin a random
password is made and printed once."""

from __future__ import annotations

import secrets
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from aicell.accounts import user_create
from aicell.errors import ValidationFailed
from aicell.roles import Role


class Command(BaseCommand):
    help = "Create a user with one or more roles (annotator, adjudicator, admin, researcher)."
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--role", action="append", required=True, choices=[role.value for role in Role], dest="roles"
        )
        parser.add_argument("--email", default="")
        parser.add_argument(
            "--password-from-stdin", action="store_true", help="read the password from the first line of stdin"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        generated = not options["password_from_stdin"]
        password = (
            secrets.token_urlsafe(12) if generated else (options.get("stdin") or sys.stdin).readline().rstrip("\r\n")
        )
        try:
            user = user_create(
                username=options["username"],
                roles=options["roles"],
                email=options["email"],
                password=password,
                actor=None,
            )
        except ValidationFailed as exc:
            problems = "; ".join(f"{error.field}: {error.reason}" for error in exc.errors) or exc.message
            raise CommandError(problems) from exc
        self.stdout.write(f"Created {user.username} ({', '.join(sorted(options['roles']))}).")
        if generated:
            self.stdout.write(f"Password: {password}")
