from django.contrib import admin

from training.models import ModelVersion


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["id", "stage", "profile", "architecture", "status", "created_at", "promoted_at"]
    list_filter = ["stage", "status", "profile"]
    search_fields = ["architecture"]
