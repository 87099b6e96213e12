"""`export_dataset`: the export command under its format-neutral name (same options as `export_coco`)."""

from annotations.management.commands.export_coco import Command as ExportCommand


class Command(ExportCommand):
    pass
