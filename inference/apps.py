from django.apps import AppConfig


class InferenceConfig(AppConfig):
    name = "inference"
    verbose_name = "Inference and pre-labelling"

    def ready(self) -> None:
        from annotations.services import FIELD_UPLOADED_HOOKS
        from inference.services import prelabel_after_promotion, prelabel_new_uploads
        from training.events import MODEL_PROMOTED_HOOKS

        FIELD_UPLOADED_HOOKS.append(prelabel_new_uploads)
        MODEL_PROMOTED_HOOKS.append(prelabel_after_promotion)
