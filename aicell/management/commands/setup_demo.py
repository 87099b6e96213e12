from typing import Any

from django.core.management.base import BaseCommand

from aicell.demo import demo_credentials_file, demo_setup


class Command(BaseCommand):
    help = "Create the demo users (new passwords, printed) and load the shipped demo fields."

    def handle(self, *args: Any, **options: Any) -> None:
        result = demo_setup()
        self.stdout.write(f"Demo fields: {result.fields_created} loaded, {result.fields_existing} already there.")
        lines = [f"  {username:<12} {password}" for username, password in result.credentials.items()]
        demo_credentials_file().write_text("\n".join(lines) + "\n")
        demo_credentials_file().chmod(0o600)
        self.stdout.write("Demo users (username, password; also in var/demo-credentials.txt):")
        self.stdout.write("\n".join(lines))
