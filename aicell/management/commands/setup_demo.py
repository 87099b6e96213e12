from typing import Any

from django.core.management.base import BaseCommand

from aicell.demo import demo_credentials_file, demo_setup


class Command(BaseCommand):
    help = "Create the demo users (new passwords, printed) and load the shipped demo fields."

    def handle(self, *args: Any, **options: Any) -> None:
        result = demo_setup()
        self.stdout.write(f"Demo fields: {result.fields_created} loaded, {result.fields_existing} already there.")
        if result.training_job_id is not None:
            self.stdout.write(
                f"Training job {result.training_job_id} (cpu profile, all stages) is queued: follow it on the Models"
                " page; once promoted, the uploaded fields are pre-labelled."
            )
        lines = [f"  {username:<12} {password}" for username, password in result.credentials.items()]
        demo_credentials_file().write_text("\n".join(lines) + "\n")
        demo_credentials_file().chmod(0o600)
        self.stdout.write("Demo users (username, password; also in var/demo-credentials.txt):")
        self.stdout.write("\n".join(lines))
