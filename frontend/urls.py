from django.urls import path, re_path

from frontend.views import app_shell, favicon

urlpatterns = [
    path("", app_shell, name="app"),
    path("favicon.ico", favicon, name="favicon"),
    # Client-side routes of the single-page app (deep links such as /fields/12) get the same shell.
    re_path(r"^(?!api/|admin/|static/|media/|api-auth/)(?P<route>[\w\-/]+)/?$", app_shell, name="app-route"),
]
