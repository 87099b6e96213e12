from django.contrib import admin

from inference.models import PrelabelItem, PrelabelJob, ReviewClaim


class PrelabelItemInline(admin.TabularInline):
    model = PrelabelItem
    extra = 0
    fields = ("field_id_at_start", "status", "error", "cell_count", "attempts")
    readonly_fields = fields
    can_delete = False


@admin.register(PrelabelJob)
class PrelabelJobAdmin(admin.ModelAdmin):
    list_display = ["id", "trigger", "status", "progress", "field_count", "done_count", "failed_count", "created_at"]
    list_filter = ["status", "trigger"]
    readonly_fields = ["pipeline", "result", "error", "celery_task_id", "heartbeat_at"]
    inlines = [PrelabelItemInline]


@admin.register(ReviewClaim)
class ReviewClaimAdmin(admin.ModelAdmin):
    list_display = ["cell", "reviewer", "expires_at"]
