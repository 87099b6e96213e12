from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "training"
    verbose_name = "Training and model registry"

    def ready(self) -> None:
        from annotations.counting.sources import MODEL_VERSION_READERS, ModelVersionReader
        from training.selectors import active_classifier_id, model_version_refs

        MODEL_VERSION_READERS.append(ModelVersionReader(active_classifier_id, model_version_refs))
