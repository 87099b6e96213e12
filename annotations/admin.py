from django.contrib import admin

from annotations.models import (
    AnnotationSet,
    Assignment,
    AuditEvent,
    Case,
    Cell,
    CellClass,
    Conflict,
    ExportJob,
    Field,
    ImportJob,
    Patient,
    ReviewSettings,
    RuleSet,
    Smear,
)
from annotations.review.services import review_settings_update


class ReadOnlyAdmin(admin.ModelAdmin):
    """For records that change only through their services (audited, versioned): the admin reads them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


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
class AuditEventAdmin(ReadOnlyAdmin):
    """The audit trail is append-only, in the admin as everywhere else."""

    list_display = ["at", "actor", "action", "entity", "entity_id", "field_id"]
    list_filter = ["action", "entity"]
    search_fields = ["entity_id", "field_id", "actor__username"]


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["id", "field", "annotator", "slot", "created_by", "created_at"]
    list_filter = ["field__status"]
    search_fields = ["field__id", "annotator__username"]
    # Assignments carry rules (two distinct annotators, final once submitted): they change through the API.
    readonly_fields = ["field", "annotator", "slot", "created_by", "created_at"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ReviewSettings)
class ReviewSettingsAdmin(admin.ModelAdmin):
    list_display = ["__str__", "show_prelabels", "iou_threshold", "updated_by", "updated_at"]
    fields = ["show_prelabels", "iou_threshold"]

    def has_add_permission(self, request):
        return not ReviewSettings.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        # The same service as the API, so an admin change is validated and audited too.
        review_settings_update(changes=form.cleaned_data, actor=request.user)


@admin.register(Conflict)
class ConflictAdmin(ReadOnlyAdmin):
    list_display = ["id", "field", "kind", "class_differs", "countability_differs", "status", "resolution"]
    list_filter = ["status", "kind"]
    search_fields = ["field__id"]

    # Conflicts are resolved through the API (versioned, audited); the admin only reads them.


@admin.register(RuleSet)
class RuleSetAdmin(ReadOnlyAdmin):
    """Read-only: a rule set is edited by storing a new version (POST /api/v1/rule-sets), never in place."""

    list_display = ["name", "version", "active", "note", "created_by", "created_at"]
    list_filter = ["name", "active"]
    readonly_fields = ["name", "version", "active", "content", "note", "created_by", "created_at"]


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
