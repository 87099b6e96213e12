from django.apps import AppConfig


class InferenceConfig(AppConfig):
    name = "inference"
    verbose_name = "Inference and pre-labelling"

    def ready(self) -> None:
        from annotations.services import FIELD_UPLOADED_HOOKS
        from inference.services import prelabel_new_uploads

        FIELD_UPLOADED_HOOKS.append(prelabel_new_uploads)
