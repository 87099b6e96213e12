from django.contrib import admin

from annotations.models import (
    AnnotationSet,
    AuditEvent,
    Case,
    Cell,
    CellClass,
    ExportJob,
    Field,
    ImportJob,
    Patient,
    Smear,
)


@admin.register(Patient)
class PatientAdmin(admin.ModelAdmin):
    list_display = ["code", "split", "created_at"]
    list_filter = ["split"]
    search_fields = ["code"]


@admin.register(Case)
class CaseAdmin(admin.ModelAdmin):
    list_display = ["code", "patient", "confirmed_diagnosis", "diagnosis_method", "collected_on"]
    list_filter = ["confirmed_diagnosis", "diagnosis_method"]
    search_fields = ["code", "patient__code"]
    autocomplete_fields = ["patient"]


@admin.register(Smear)
class SmearAdmin(admin.ModelAdmin):
    list_display = ["code", "case", "stain", "microscope", "magnification", "created_at"]
    list_filter = ["stain", "magnification"]
    search_fields = ["code", "case__code"]
    autocomplete_fields = ["case"]


@admin.register(Field)
class FieldAdmin(admin.ModelAdmin):
    list_display = ["id", "smear", "status", "format", "width", "height", "created_at"]
    list_filter = ["status", "format", "smear__case__confirmed_diagnosis"]
    search_fields = ["sha256", "smear__code", "smear__case__code"]
    readonly_fields = ["sha256", "width", "height", "format", "byte_size", "image", "thumbnail", "uploaded_by"]


@admin.register(CellClass)
class CellClassAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "lineage", "is_blast", "shortcut"]
    list_filter = ["lineage", "is_blast"]

    def has_add_permission(self, request):
        return False  # the taxonomy is fixed: ids are referenced by checkpoints and exports

    def has_delete_permission(self, request, obj=None):
        return False


class CellInline(admin.TabularInline):
    model = Cell
    extra = 0
    fields = ("x", "y", "width", "height", "countable", "cell_class", "confidence", "entropy")
    readonly_fields = fields
    can_delete = False


@admin.register(AnnotationSet)
class AnnotationSetAdmin(admin.ModelAdmin):
    list_display = ["id", "field", "kind", "annotator", "model_version", "status", "version", "updated_at"]
    list_filter = ["kind", "status"]
    search_fields = ["field__id", "annotator__username"]
    readonly_fields = ["version"]
    inlines = [CellInline]


@admin.register(Cell)
class CellAdmin(admin.ModelAdmin):
    list_display = ["id", "annotation_set", "cell_class", "countable", "confidence", "entropy"]
    list_filter = ["annotation_set__kind", "countable", "cell_class"]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["at", "actor", "action", "entity", "entity_id", "field_id"]
    list_filter = ["action", "entity"]
    search_fields = ["entity_id", "field_id", "actor__username"]

    # The audit trail is append-only, in the admin as everywhere else.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ExportJob)
class ExportJobAdmin(admin.ModelAdmin):
    list_display = ["id", "status", "progress", "created_by", "created_at", "finished_at"]
    list_filter = ["status"]
    readonly_fields = ["parameters", "result", "error", "file", "celery_task_id"]


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = ["id", "format", "case", "status", "progress", "created_by", "created_at", "finished_at"]
    list_filter = ["status", "format"]
    readonly_fields = ["parameters", "result", "error", "archive", "celery_task_id"]
