from django.apps import AppConfig


class AicellConfig(AppConfig):
    """Cross-cutting pieces of the platform: roles (seeded groups) and setup commands."""

    name = "aicell"
    verbose_name = "AI-cell platform"
